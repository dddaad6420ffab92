"""What the Cell Broadcast Centre was told per alert, area and language (one Redis hash per
alert; this module owns it): the next version's update number comes from it, and the reach
report lists broadcasts apart from per-person reach (a broadcast has no per-phone receipts)."""

from __future__ import annotations

import time
from typing import Any

import orjson

from warning.keys import RETENTION_S, Keys


class BroadcastLog:
    def __init__(self, redis: Any, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def get(self, alert_id: str, area: str, language: str) -> dict[str, Any]:
        raw = await self.redis.hget(self.keys.broadcasts(alert_id), f"{area}:{language}")
        return orjson.loads(raw) if raw else {}

    async def keep(self, alert_id: str, expires: float, state: dict[str, Any]) -> None:
        key = self.keys.broadcasts(alert_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, f"{state['area']}:{state['language']}", orjson.dumps(state))
            pipe.expire(key, int(max(expires - time.time(), 0) + RETENTION_S))
            await pipe.execute()

    async def of_alert(self, alert_id: str) -> list[dict[str, Any]]:
        raw = await self.redis.hgetall(self.keys.broadcasts(alert_id))
        return sorted((orjson.loads(v) for v in raw.values()), key=lambda b: (b["area"], b["language"]))
