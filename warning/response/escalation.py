"""Escalation chains: township → district → city (→ province) until someone acknowledges.

The pure part says what a chain is (:func:`chain_timeout`, :func:`next_level`); the
timers live in Redis so they survive any process: a sorted set of alert ids scored by
when their next step is due, and a hash per chain. Firing a step is one Lua script that
removes the timer, advances the chain and appends the step to an outbox stream (all
under the ``{esc}`` hash tag: one Redis Cluster slot) — so two
escalators racing for a due timer fire it once, and a crash after the script loses
nothing: the outbox entry is processed (notifications enqueued idempotently, the event
published) by whichever escalator reads it, and re-read if that one dies.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from warning.keys import Keys
from warning.models import AlertVersion, Tier
from warning.store.scripts import lua


def chain_timeout(tier: Tier, timeouts: dict[str, float]) -> float | None:
    """Seconds each level has to acknowledge before the next is told; None: no escalation."""
    value = timeouts.get(tier.value)
    return float(value) if value else None


@dataclass(frozen=True)
class Step:
    alert_id: str
    step: int  # 1 = first escalation (the second level)
    level: str
    version: int
    due: float
    entry_id: str = ""


class EscalationTimers:
    def __init__(self, redis: aioredis.Redis, keys: Keys, levels: list[str], timeouts: dict[str, float]) -> None:
        self.redis = redis
        self.keys = keys
        self.levels = levels
        self.timeouts = timeouts
        self._fire = redis.register_script(lua("escalation_fire", "warning.response"))
        self._start = redis.register_script(lua("escalation_start", "warning.response"))

    async def on_version(self, alert: AlertVersion, now: float | None = None) -> str:
        """A new alert version: start the chain, restart it on an upgrade, end it on a cancel."""
        return (await self.on_versions([alert], time.time() if now is None else now))[0]

    async def on_versions(self, alerts: Sequence[AlertVersion], now: float | None = None) -> list[str]:
        """:meth:`on_version` for a batch of different alerts: a read and a write round trip.
        Without ``now`` each chain is timed from its version's issue."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for alert in alerts:
                pipe.hget(self.keys.escalation(alert.alert_id), "tier")
            tiers = await pipe.execute()
        outcomes: list[str] = []
        async with self.redis.pipeline(transaction=False) as pipe:
            for alert, tier in zip(alerts, tiers, strict=True):
                started = alert.issued_at.timestamp() if now is None else now
                outcomes.append(await self._stage(pipe, alert, Tier(tier) if tier else None, started))
            await pipe.execute()
        return outcomes

    async def _stage(self, pipe: Pipeline, alert: AlertVersion, current: Tier | None, now: float) -> str:
        if alert.msg_type == "Cancel":
            await stop_chain(self.redis, self.keys, alert.alert_id, "cancelled")
            return "cancelled"
        if current is not None and current.rank >= alert.tier.rank:
            return "unchanged"
        timeout = chain_timeout(alert.tier, self.timeouts)
        if timeout is None:
            return "none"
        due = now + timeout
        chain = self.keys.escalation(alert.alert_id)
        fields = {"alert_id": alert.alert_id, "tier": alert.tier.value, "version": alert.version,
                  "area": alert.area, "state": "running", "step": 0, "level": self.levels[0],
                  "levels": orjson.dumps(self.levels).decode(), "timeout_s": timeout, "due": due, "started": now}
        await self._start(keys=[chain, self.keys.escalation_due],
                          args=[int(alert.expires.timestamp() - now + 7 * 86400), due, alert.alert_id,
                                *(str(x) for pair in fields.items() for x in pair)], client=pipe)
        return "restarted" if current else "started"

    async def fire_due(self, now: float, limit: int = 100) -> int:
        """Advance every chain whose step is due; each step lands in the outbox once."""
        due = [str(a) for a in await self.redis.zrangebyscore(self.keys.escalation_due, "-inf", now,
                                                                 start=0, num=limit)]
        if not due:
            return 0
        chains = [self.keys.escalation(alert_id) for alert_id in due]
        return int(await self._fire(keys=[self.keys.escalation_due, self.keys.escalation_outbox, *chains],
                                    args=[now, *due]))

    async def state(self, alert_id: str) -> dict[str, Any]:
        raw = {str(k): str(v) for k, v in (await self.redis.hgetall(self.keys.escalation(alert_id))).items()}
        if not raw:
            return {"state": "none"}
        due = float(raw["due"]) if raw.get("due") else None
        return {"state": raw["state"], "tier": raw["tier"], "step": int(raw["step"]), "level": raw["level"],
                "next_level": _next(raw), "next_due": due, "timeout_s": float(raw["timeout_s"])}


def _next(raw: dict[str, str]) -> str | None:
    levels = orjson.loads(raw["levels"])
    step = int(raw["step"])
    return levels[step + 1] if raw["state"] == "running" and step + 1 < len(levels) else None


async def stop_chain(redis: aioredis.Redis, keys: Keys, alert_id: str, why: str) -> bool:
    """Acknowledged or cancelled: no further step. True if a running chain stopped."""
    chain = keys.escalation(alert_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrem(keys.escalation_due, alert_id)
        pipe.hget(chain, "state")
        _, state = await pipe.execute()
    if state == "running":
        await redis.hset(chain, mapping={"state": why, "due": "", "stopped": time.time()})
        return True
    return False
