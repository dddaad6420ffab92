"""Telling the approvers: when a version starts waiting for a second person (or its hold
moves a level up), every officer who may approve it — jurisdiction over the area, at the
pending level or above, not its author — gets a message on their own channel, through the
same queues as the alert (idempotent: one per officer, version and level)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from warning.areas import inside
from warning.models import DeliveryJob, Tier
from warning.targeting.audience import Record, personal
from warning.targeting.message import hazard_name, short_ref_of, tier_name


def approvers(pending: dict[str, Any], officers: Sequence[Record], levels: Sequence[str]) -> list[Record]:
    alert = pending["alert"]
    at_least = set(levels[pending["level"]:])
    return [o for o in officers if o.get("level") in at_least and o["id"] != pending["author"]
            and inside(alert["area"], o.get("jurisdiction") or "~")]


def approval_text(pending: dict[str, Any], language: str, area_name: str, now: float,
                  on_timeout: str) -> str:
    alert = pending["alert"]
    hazard, tier = hazard_name(alert["hazard"], language), tier_name(alert["tier"], language)
    minutes = max(1, math.ceil((pending["hold_until"] - now) / 60))
    ref = short_ref_of(alert["alert_id"], pending["version"])
    drill = "[EXERCISE] " if alert.get("drill") and language == "en" else "【演练】" if alert.get("drill") else ""
    if language.startswith("en"):
        then = "released" if on_timeout == "release" else "passed up a level"
        return (f"{drill}[Approval needed] {tier} {hazard} warning for {area_name} waits for your approval to reach "
                f"residents; in {minutes} min it is {then}. Reply APPROVE {ref} to approve")
    then = "自动发布" if on_timeout == "release" else "上报上级审核"
    return (f"{drill}【待审核】{area_name}{hazard}{tier}预警待您审核后发布给居民，"
            f"{minutes}分钟内未审核将{then}。回复“批准 {ref}”即批准")


def approval_jobs(pending: dict[str, Any], officers: Sequence[Record], levels: Sequence[str],
                  area_name: Any, now: float, on_timeout: str) -> list[DeliveryJob]:
    """``area_name(code, language)`` names the area in the officer's language."""
    alert = pending["alert"]
    jobs = []
    for officer in approvers(pending, officers, levels):
        target = personal(officer)
        if target is None:
            continue
        jobs.append(DeliveryJob(
            alert_id=alert["alert_id"], version=pending["version"], tier=Tier(alert["tier"]),
            msg_type=alert["msg_type"], channel=target.channel,
            recipient=f"{officer['id']}#approve{pending['level']}", address=target.address,
            language=target.language,
            text=approval_text(pending, target.language, area_name(alert["area"], target.language), now, on_timeout),
            expires=min(float(pending["hold_until"]) + 3600, _epoch(alert["expires"])), issued_at=now,
            fallback=list(target.fallback)))
    return jobs


def _epoch(value: Any) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp() if isinstance(value, str) else float(value)
