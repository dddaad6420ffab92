"""The senders' token buckets, on Redis's own clock and shared by every consumer."""

from __future__ import annotations

import redis.asyncio as aioredis

from warning.keys import Keys
from warning.store.scripts import lua


class RateBuckets:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.keys = keys
        self._take = redis.register_script(lua("take_tokens"))

    async def take_tokens(self, sender: str, want: int, rate: float, burst: float) -> tuple[int, float]:
        """Up to ``want`` sends allowed now by the sender's shared bucket, and the wait for the rest."""
        granted, wait = await self._take(keys=[self.keys.rate_bucket(sender)], args=[rate, burst, want])
        return int(granted), float(wait)
