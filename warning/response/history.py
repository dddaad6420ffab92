"""Closed alerts (expired or cancelled), kept queryable for ``WARNING_HISTORY_DAYS``.

A closed alert stays in the active index with a score in the past (its expiry, or its
cancel's issue time), so it drops out of the active list at once. After
``ARCHIVE_AFTER_S`` — time for the all-clear's deliveries and late acknowledgements to land
— the archivist (run by every `warning escalator`; archiving twice writes the same thing)
freezes its detail and after-action report into one JSON string and moves it to the
history index. This module owns ``history`` and ``history:{alert_id}``.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import structlog

from warning.areas import inside
from warning.bootstrap import Container
from warning.response.report import after_action_report, alert_detail

log = structlog.get_logger()
ARCHIVE_AFTER_S = 600.0
SUMMARY_FIELDS = ("alert_id", "hazard", "area", "tier", "version", "msg_type", "expires", "source", "drill",
                  "reach_pct")


async def archive_due(c: Container, now: float, limit: int = 100) -> int:
    """Archive the alerts that closed more than ``ARCHIVE_AFTER_S`` ago; how many."""
    ids = [str(a) for a in await c.redis.zrangebyscore(c.keys.active_alerts, "-inf", now - ARCHIVE_AFTER_S,
                                                        start=0, num=limit)]
    keep_s = int(c.settings.history_days * 86400)
    for alert_id in ids:
        detail = await alert_detail(c, alert_id)
        if detail is not None:
            closed_at = float(await c.redis.zscore(c.keys.active_alerts, alert_id) or now)
            record = {"closed_at": closed_at, "detail": detail, "report": await after_action_report(c, alert_id)}
            # The record first (its own slot), then the move from active to history in one
            # MULTI ({alerts}): a crash between leaves the alert active, archived again next time.
            await c.redis.set(c.keys.archived(alert_id), orjson.dumps(record), ex=keep_s)
            async with c.redis.pipeline(transaction=True) as pipe:
                pipe.zadd(c.keys.history, {alert_id: closed_at})
                pipe.zrem(c.keys.active_alerts, alert_id)
                await pipe.execute()
            log.info("alert_archived", alert_id=alert_id, closed_at=closed_at)
        else:
            await c.redis.zrem(c.keys.active_alerts, alert_id)  # its record is gone: nothing to keep
    await c.redis.zremrangebyscore(c.keys.history, "-inf", now - keep_s)
    return len(ids)


async def archived(c: Container, alert_id: str) -> Any:
    raw = await c.redis.get(c.keys.archived(alert_id))
    return orjson.loads(raw) if raw else None


def _summary(detail: dict[str, Any], closed_at: float) -> dict[str, Any]:
    return {**{k: detail.get(k) for k in SUMMARY_FIELDS}, "closed_at": closed_at,
            "state": "cancelled" if detail.get("msg_type") == "Cancel" else "expired"}


async def closed_alerts(c: Container, since: float | None = None, until: float | None = None,
                        hazard: str | None = None, area: str | None = None, limit: int = 50,
                        offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Closed alerts, newest first, filtered; (one page, how many match in all)."""
    now = time.time()
    lo, hi = since if since is not None else "-inf", min(until if until is not None else now, now)
    recent = await c.redis.zrangebyscore(c.keys.active_alerts, lo, hi, withscores=True)  # closed, not archived yet
    kept = await c.redis.zrangebyscore(c.keys.history, lo, hi, withscores=True)
    found: list[dict[str, Any]] = []
    for alert_id, closed_at in sorted([*recent, *kept], key=lambda p: -p[1]):
        record = await archived(c, str(alert_id))
        detail = record["detail"] if record else await alert_detail(c, str(alert_id))
        if detail is None:
            continue
        if (hazard and detail["hazard"] != hazard) or (area and not inside(detail["area"], area)):
            continue
        found.append(_summary(detail, float(closed_at)))
    return found[offset:offset + limit], len(found)
