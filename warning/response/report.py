"""Read side of the closed loop: an alert's full state and its after-action report.

found (versions, reach per channel) → handled (acknowledgements per level, escalation
steps, grids confirmed) → evaluated (time to reach 50/90/99 % per channel, time to
acknowledge per level, feedback) — for the API, the console and `warning report`.
"""

from __future__ import annotations

from typing import Any

import orjson

from warning import reach
from warning.bootstrap import Container
from warning.config import CHANNELS
from warning.delivery.broadcast_log import BroadcastLog
from warning.readmodel import alert_status
from warning.response.ack import audit_trail


async def grid_quorum(c: Container, alert_id: str) -> dict[str, Any]:
    """Grids the alert went to: confirmed when ``grid_quorum`` of their workers (or all, if
    fewer) confirmed; the unconfirmed ones are listed."""
    grids = sorted(str(g) for g in await c.redis.smembers(c.keys.alert_grids(alert_id)))
    confirmed: list[dict[str, Any]] = []
    unconfirmed: list[dict[str, Any]] = []
    for grid in grids:
        workers = await c.redis.hlen(c.keys.workers(grid))
        got = await c.redis.scard(c.keys.confirmations(alert_id) + f":{grid}")
        need = min(c.settings.grid_quorum, workers) if workers else 1
        entry = {"grid": grid, "confirmed_by": got, "workers": workers, "needed": need}
        (confirmed if got >= need else unconfirmed).append(entry)
    return {"quorum": c.settings.grid_quorum, "confirmed": confirmed, "unconfirmed": unconfirmed}


async def alert_detail(c: Container, alert_id: str) -> dict[str, Any] | None:
    status = await alert_status(c.store, alert_id)
    if status is None:
        return None
    versions = await c.store.alerts.versions(alert_id, status["version"])
    targeted = {ch: counts.get("targeted", 0) for ch, counts in status["channels"].items()}
    return {**status, "versions": versions,
            "reach_pct": {ch: round(100 * status["reached"].get(ch, 0) / n, 1) for ch, n in targeted.items() if n},
            "escalation": await c.escalation.state(alert_id), "grids": await grid_quorum(c, alert_id),
            "feedback": [orjson.loads(f) for f in await c.redis.lrange(c.keys.feedback(alert_id), 0, -1)],
            "audit": await audit_trail(c.redis, c.keys, alert_id)}


async def after_action_report(c: Container, alert_id: str) -> dict[str, Any] | None:
    detail = await alert_detail(c, alert_id)
    if detail is None:
        return None
    first_issue = min((v["issued_at"] for v in detail["versions"]), default=None)
    issued = _epoch(first_issue) if first_issue else None
    per_channel = {}
    for channel in CHANNELS:
        raw = await c.redis.hgetall(c.keys.reach_channel(alert_id, channel))
        histogram = {int(k): int(v) for k, v in raw.items()}
        if histogram:
            p50, p90, p99 = reach.percentiles(histogram)
            per_channel[channel] = {"p50_s": p50, "p90_s": p90, "p99_s": p99, "handed_off": sum(histogram.values()),
                                    "targeted": detail["channels"].get(channel, {}).get("targeted", 0)}
    officers = {o["id"]: o for o in await c.recipients.officers()}
    to_ack: dict[str, float] = {}
    for ack in detail["acks"]:
        level = ack.get("level") or officers.get(ack["by"], {}).get("level") or ack.get("role") or "other"
        if issued is not None:
            to_ack.setdefault(level, round(_epoch(ack["at"]) - issued, 3))
    steps = [e for e in detail["audit"] if e.get("event") == "escalation"]
    return {
        "alert_id": alert_id, "hazard": detail["hazard"], "area": detail["area"], "tier": detail["tier"],
        "versions": [{k: v[k] for k in ("version", "tier", "msg_type", "issued_at")} for v in detail["versions"]],
        "reach": per_channel, "time_to_ack_s": to_ack,
        "escalation": {"steps": [{"step": e["step"], "level": e["level"], "notified": e["notified"],
                                  "after_s": round(e["at"] - issued, 3) if issued else None} for e in steps],
                       "final_state": detail["escalation"].get("state")},
        "grids": detail["grids"], "feedback": detail["feedback"], "door_knocks": detail["door_knocks"],
        # per area and language: when, how often, until when (no per-phone receipts exist)
        "broadcasts": await BroadcastLog(c.redis, c.keys).of_alert(alert_id),
    }


def _epoch(value: str | float) -> float:
    from datetime import datetime

    return value if isinstance(value, float) else datetime.fromisoformat(str(value)).timestamp()
