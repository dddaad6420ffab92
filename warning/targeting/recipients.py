"""The recipient directory in Redis: residents and grid workers indexed by grid, officers.

Records are compact JSON (what a channel needs: phone, push token, channel order,
language, opt-in; officers also their level and jurisdiction). Import writes them in
pipelined batches (see importer.py); fan-out reads the grids an alert touches.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import redis.asyncio as aioredis

from warning.keys import Keys
from warning.targeting.directory import Person

Record = dict[str, Any]
RECORD_FIELDS = ("id", "phone", "push_token", "language", "channels", "opted_in", "level", "jurisdiction")


def record_of(person: Person) -> bytes:
    data = person.model_dump(include=set(RECORD_FIELDS), exclude_none=True, exclude_defaults=False)
    return orjson.dumps(data)


class RecipientStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def _by_grid(self, keyfn: Any, grid_ids: Iterable[str]) -> list[Record]:
        ids = list(grid_ids)
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for grid_id in ids:
                pipe.hvals(keyfn(grid_id))
            replies = await pipe.execute()
        return [orjson.loads(raw) for values in replies for raw in values]

    async def residents(self, grid_ids: Iterable[str]) -> list[Record]:
        return await self._by_grid(self.keys.residents, grid_ids)

    async def workers(self, grid_ids: Iterable[str]) -> list[Record]:
        return await self._by_grid(self.keys.workers, grid_ids)

    async def officers(self) -> list[Record]:
        return [orjson.loads(raw) for raw in await self.redis.hvals(self.keys.officers)]
