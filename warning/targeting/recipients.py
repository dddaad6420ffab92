"""The recipient directory in Redis: residents and grid workers indexed by grid, officers.

Records are compact JSON (what a channel needs: phone, push token, channel order,
language, opt-in; officers also their level and jurisdiction). Import writes them in
pipelined batches (see importer.py); fan-out reads the grids an alert touches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.client import NEVER_DECODE

from warning.keys import Keys
from warning.targeting.directory import Person

Record = dict[str, Any]
Staff = tuple[dict[str, list[Record]], list[Record]]  # workers per grid, every officer
RECORD_FIELDS = ("id", "name", "phone", "push_token", "language", "channels", "opted_in", "level", "jurisdiction")


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

    async def _values(self, keyfn: Any, grid_ids: Iterable[str], raw: bool = False) -> list[Any]:
        """Every value of the per-grid hash ``keyfn(grid)`` over the grids, one round trip;
        ``raw``: as bytes, not decoded (the client decodes replies)."""
        ids = list(grid_ids)
        if not ids:
            return []
        options = {NEVER_DECODE: True} if raw else {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for grid_id in ids:
                pipe.execute_command("HVALS", keyfn(grid_id), **options)
            replies = await pipe.execute()
        return [value for values in replies for value in values]

    async def _by_grid(self, keyfn: Any, grid_ids: Iterable[str]) -> list[Record]:
        return [orjson.loads(raw) for raw in await self._values(keyfn, grid_ids)]

    async def resident_stubs(self, grid_ids: Iterable[str], opted_in_only: bool) -> list[bytes]:
        """Prepared resident stubs (see :func:`resident_stub`) of these grids."""
        keyfn = self.keys.residents_opted if opted_in_only else self.keys.residents
        # As bytes: a million stubs decoded to str only to be encoded again cost ~1 s.
        return await self._values(keyfn, grid_ids, raw=True)

    async def some_resident_stubs(self, grid_id: str, opted_in_only: bool, count: int) -> list[bytes]:
        """About ``count`` of a grid's resident stubs, in one step of HSCAN (a small grid whole):
        bounded however big the grid is."""
        key = (self.keys.residents_opted if opted_in_only else self.keys.residents)(grid_id)
        async with self.redis.pipeline(transaction=False) as pipe:  # typed, unlike the client's execute_command
            pipe.execute_command("HSCAN", key, 0, "COUNT", count, **{NEVER_DECODE: True})
            [(_, found)] = await pipe.execute()
        return list(found.values())

    def stage_resident_counts(self, pipe: Pipeline, grid_ids: Sequence[str]) -> None:
        """How many residents each grid holds, all and opted in: ``2 * len(grid_ids)`` replies."""
        for grid_id in grid_ids:
            pipe.hlen(self.keys.residents(grid_id))
            pipe.hlen(self.keys.residents_opted(grid_id))

    async def resident_counts(self, grid_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            self.stage_resident_counts(pipe, grid_ids)
            return self.resident_counts_from(grid_ids, await pipe.execute())

    @staticmethod
    def resident_counts_from(grid_ids: Sequence[str], replies: Sequence[Any]) -> dict[str, tuple[int, int]]:
        """grid -> (residents, opted-in residents), from :meth:`stage_resident_counts`' replies."""
        return {grid_id: (int(replies[2 * i]), int(replies[2 * i + 1])) for i, grid_id in enumerate(grid_ids)}

    async def workers(self, grid_ids: Iterable[str]) -> list[Record]:
        return await self._by_grid(self.keys.workers, grid_ids)

    async def officers(self) -> list[Record]:
        return [orjson.loads(raw) for raw in await self.redis.hvals(self.keys.officers)]

    async def staff(self, grid_ids: Iterable[str]) -> Staff:
        """The workers of each grid and every officer, in one round trip (a batch of alerts)."""
        ids = sorted(set(grid_ids))
        async with self.redis.pipeline(transaction=False) as pipe:
            self.stage_staff(pipe, ids)
            return self.staff_from(ids, await pipe.execute())

    def stage_staff(self, pipe: Pipeline, grid_ids: Sequence[str]) -> None:
        """:meth:`staff` as commands of a caller's pipeline: ``len(grid_ids) + 1`` replies."""
        for grid_id in grid_ids:
            pipe.hvals(self.keys.workers(grid_id))
        pipe.hvals(self.keys.officers)

    @staticmethod
    def staff_from(grid_ids: Sequence[str], replies: Sequence[Any]) -> Staff:
        *per_grid, officers = replies
        workers = {grid_id: [orjson.loads(raw) for raw in values]
                   for grid_id, values in zip(grid_ids, per_grid, strict=True)}
        return workers, [orjson.loads(raw) for raw in officers]

    async def forget_address(self, person_id: str, channel: str, address: str) -> bool:
        """Drop an address a provider says is dead (an unregistered push token) from the
        person's records; returns whether anything changed."""
        raw = await self.redis.hget(self.keys.people, person_id)
        if not raw:
            return False
        role, _, grids = (raw.decode() if isinstance(raw, bytes) else raw).partition(" ")
        grid_ids = [g for g in grids.split(",") if g]
        if role == "resident":
            hashes = [k for g in grid_ids for k in (self.keys.residents(g), self.keys.residents_opted(g))]
            rewrite: Callable[[bytes, str, str], bytes | None] = without_in_stub
        else:
            hashes = [self.keys.officers] if role == "officer" else [self.keys.workers(g) for g in grid_ids]
            rewrite = without_in_record
        changed = False
        for key in hashes:
            current = await self.redis.hget(key, person_id)
            if current is None:
                continue
            value = current if isinstance(current, bytes) else current.encode()
            updated = rewrite(value, channel, address)
            if updated == value:
                continue
            changed = True
            if updated:
                await self.redis.hset(key, person_id, updated)
            else:
                await self.redis.hdel(key, person_id)
        return changed


def without_in_stub(stub: bytes, channel: str, address: str) -> bytes | None:
    """A resident stub without one (channel, address); None when no channel is left."""
    first, recipient, raw = stub.split(b"\t", 2)
    fields = orjson.loads(raw)
    usable = [(first.decode(), fields["address"]), *[tuple(x) for x in fields.get("fallback", [])]]
    kept = [(c, a) for c, a in usable if (c, a) != (channel, address)]
    if len(kept) == len(usable):
        return stub
    if not kept:
        return None
    fields.update(address=kept[0][1], fallback=kept[1:])
    return f"{kept[0][0]}\t".encode() + recipient + b"\t" + orjson.dumps(fields)


_ADDRESS_FIELD = {"sms": "phone", "push": "push_token"}


def without_in_record(record: bytes, channel: str, address: str) -> bytes:
    data = orjson.loads(record)
    field = _ADDRESS_FIELD.get(channel, "")
    if data.get(field) != address:
        return record
    data.pop(field)
    return orjson.dumps(data)
