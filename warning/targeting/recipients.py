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


def resident_stub(person: Person) -> bytes | None:
    """A resident as fan-out needs them, prepared once at import: ``channel TAB id TAB fields``.

    The job fields are a JSON object (recipient, address, language, fallback) that fan-out
    splices into each job without decoding it — at a million residents, decoding and
    re-encoding records would cost seconds. None when the person has no usable channel.
    """
    from warning.targeting.audience import personal  # targeting's rule, applied once here

    target = personal({"id": person.id, "phone": person.phone, "push_token": person.push_token,
                       "channels": person.channels, "language": person.language})
    if target is None:
        return None
    fields = {"recipient": target.recipient_id, "address": target.address, "language": target.language,
              "fallback": target.fallback}
    return f"{target.channel}\t{target.recipient_id}\t".encode() + orjson.dumps(fields)


class RecipientStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def _values(self, keyfn: Any, grid_ids: Iterable[str]) -> list[Any]:
        """Every value of the per-grid hash ``keyfn(grid)`` over the grids, one round trip."""
        ids = list(grid_ids)
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for grid_id in ids:
                pipe.hvals(keyfn(grid_id))
            replies = await pipe.execute()
        return [raw for values in replies for raw in values]

    async def _by_grid(self, keyfn: Any, grid_ids: Iterable[str]) -> list[Record]:
        return [orjson.loads(raw) for raw in await self._values(keyfn, grid_ids)]

    async def resident_stubs(self, grid_ids: Iterable[str], opted_in_only: bool) -> list[bytes]:
        """Prepared resident stubs (see :func:`resident_stub`) of these grids."""
        keyfn = self.keys.residents_opted if opted_in_only else self.keys.residents
        return [raw if isinstance(raw, bytes) else raw.encode() for raw in await self._values(keyfn, grid_ids)]

    async def workers(self, grid_ids: Iterable[str]) -> list[Record]:
        return await self._by_grid(self.keys.workers, grid_ids)

    async def officers(self) -> list[Record]:
        return [orjson.loads(raw) for raw in await self.redis.hvals(self.keys.officers)]
