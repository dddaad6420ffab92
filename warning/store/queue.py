"""The delivery queue: per channel, ``shards`` shard lanes (a recipient always in the same
one), each a stream per tier (red drains before blue), with its retries and idempotency sets
under the shard's hash tag — so on Redis Cluster one channel's traffic spreads over the
masters while every script stays in one slot.

Fan-out calls :meth:`DeliveryQueue.enqueue_raw` / :meth:`~DeliveryQueue.enqueue_stubs`;
channel workers call :meth:`~DeliveryQueue.read`, :meth:`~DeliveryQueue.reclaim` and
:meth:`~DeliveryQueue.ack_entries`. Enqueue cannot create a duplicate: a set per alert
version and shard remembers every ``channel:recipient`` already queued, checked and written
in the same script as the XADD.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from warning.config import ConfigError
from warning.delivery.batches import lanes, ramp
from warning.keys import RETENTION_S, Keys
from warning.models import WARNING_TIERS, DeliveryJob, Tier
from warning.store.alerts import AlertRecords, latest_version, shared_fields
from warning.store.replication import ReplicaWait
from warning.store.scripts import lua

PIPELINE_BATCHES = 10  # enqueue batches per round trip: bounded, or a million jobs jam the socket
SHARDED_BLOCK_MS = 20  # with several shard lanes a blocking read waits on one: short, and rotated
TIERS = (*WARNING_TIERS, Tier.none)  # loudest first


@dataclass(frozen=True)
class Claimed:
    stream: str
    entry_id: str
    job: DeliveryJob
    latest: int | None = None  # the alert's current version, read with the job (None: not read)


class DeliveryQueue:
    def __init__(self, redis: aioredis.Redis, keys: Keys, alerts: AlertRecords,
                 replication: ReplicaWait | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.alerts = alerts
        self.replication = replication or ReplicaWait()
        self._enqueue = redis.register_script(lua("enqueue"))
        self._promote = redis.register_script(lua("promote"))
        self._rotation = 0

    # --- fan-out side -----------------------------------------------------------------

    async def stage_enqueue(self, pipe: Pipeline, jobs: Sequence[dict[str, Any]], batch: int,
                            expires: float | None = None) -> int:
        """:meth:`enqueue_raw` for a few jobs, as script calls in a caller's pipeline (each
        returns how many of its jobs were new); returns how many calls it added."""
        calls = 0
        for (alert_id, version, channel, tier, shard), (lines, lane_expires) in self._lanes(jobs, expires).items():
            keys = self._enqueue_keys(alert_id, version, channel, Tier(tier), shard)
            ttl = int(max((lane_expires or 0) - time.time(), 0) + RETENTION_S)
            for at in range(0, len(lines), batch):
                await self._enqueue(keys=keys, args=[ttl, b"\n".join(lines[at:at + batch])], client=pipe)
                calls += 1
        return calls

    async def enqueue(self, jobs: Sequence[DeliveryJob], batch: int = 2000) -> int:
        """Queue jobs in the tier's lane; returns how many were new (replays add zero)."""
        return await self.enqueue_raw([job.model_dump(mode="json") for job in jobs], batch)

    async def enqueue_raw(self, jobs: Sequence[dict[str, Any]], batch: int = 2000,
                          expires: float | None = None) -> int:
        """:meth:`enqueue` for jobs in their JSON shape: DeliveryJob's fields, or a stub whose
        shared fields are in the alert record (``AlertRecords.stage_texts``) — then pass ``expires``."""
        added = 0
        for (alert_id, version, channel, tier, shard), (lines, lane_expires) in self._lanes(jobs, expires).items():
            added += await self._enqueue_lines(alert_id, version, channel, Tier(tier), shard, lines, lane_expires,
                                               batch)
        return added

    async def enqueue_stubs(self, alert_id: str, version: int, tier: Tier, stubs: Sequence[bytes],
                            batch: int, expires: float) -> int:
        """Queue residents from their prepared stubs (``channel TAB id TAB fields``), spliced
        into job JSON without decoding them."""
        by_lane: dict[tuple[bytes, int], list[bytes]] = {}
        for stub in stubs:
            channel, recipient, fields = stub.split(b"\t", 2)
            head = by_lane.setdefault((channel, self.keys.shard(recipient.decode())), [])
            head.append(channel + b":" + recipient + b"\t" + fields)
        added = 0
        for (channel, shard), partial in by_lane.items():
            common = orjson.dumps({"alert_id": alert_id, "version": version, "tier": tier.value,
                                   "channel": channel.decode()})[:-1] + b","
            lines = [line.replace(b"\t{", b"\t" + common, 1) for line in partial]
            added += await self._enqueue_lines(alert_id, version, channel.decode(), tier, shard, lines, expires, batch)
        return added

    def _lanes(self, jobs: Sequence[dict[str, Any]], expires: float | None) -> dict[Any, Any]:
        return lanes(jobs, expires, self.keys.shard)

    async def _enqueue_lines(self, alert_id: str, version: int, channel: str, tier: Tier, shard: int,
                             lines: list[bytes], expires: float | None, batch: int) -> int:
        """Run the enqueue script over ``member TAB job-json`` lines, batch by batch: the first
        batch small and sent alone, so the first recipients' jobs reach consumers while Redis
        still works through the rest (one script holds Redis for its whole batch)."""
        keys = self._enqueue_keys(alert_id, version, channel, tier, shard)
        ttl = int(max((expires or 0) - time.time(), 0) + RETENTION_S)
        added = 0
        in_flight: asyncio.Task[int] | None = None
        pipe, staged = self.redis.pipeline(transaction=False), 0
        bounds = list(ramp(len(lines), batch))
        for n, (start, end) in enumerate(bounds):
            await self._enqueue(keys=keys, args=[ttl, b"\n".join(lines[start:end])], client=pipe)
            staged += 1
            if n == 0 or staged == PIPELINE_BATCHES or n == len(bounds) - 1:
                # One round trip in flight while the next is prepared: Redis works as Python does.
                if in_flight is not None:
                    added += await in_flight
                in_flight = asyncio.create_task(self._added(pipe, last=n == len(bounds) - 1))
                await asyncio.sleep(0)
                pipe, staged = self.redis.pipeline(transaction=False), 0
        if in_flight is not None:
            added += await in_flight
        return added

    async def _added(self, pipe: Pipeline, last: bool) -> int:
        replies = await self.replication.execute(pipe, "enqueue" if last else None)
        return sum(int(x) for x in replies)

    def _enqueue_keys(self, alert_id: str, version: int, channel: str, tier: Tier, shard: int) -> list[str]:
        return [self.keys.enqueued(alert_id, version, channel, shard), self.keys.queue(channel, tier, shard),
                self.keys.delivery_counts(alert_id, channel, shard)]

    # --- worker side ------------------------------------------------------------------

    def lanes(self, channel: str, shard: int = 0) -> list[str]:
        """A shard's streams, loudest tier first: red drains before blue."""
        return [self.keys.queue(channel, tier, shard) for tier in TIERS]

    async def ensure_group(self, channel: str) -> None:
        for shard in range(self.keys.shards):
            for stream in self.lanes(channel, shard):
                try:
                    await self.redis.xgroup_create(stream, self.keys.group(channel), id="0", mkstream=True)
                except ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise

    async def _decode(self, stream: str, entries: Iterable[tuple[str, dict[str, str]]]) -> list[Claimed]:
        """Jobs from stream entries: a stub per recipient plus what the alert record holds once."""
        stubs = [(entry_id, orjson.loads(fields["job"])) for entry_id, fields in entries if fields and "job" in fields]
        # What a stub lacks is the same for every stub of one alert version, channel and
        # language: read and built once per those four (a big batch is a few of them).
        kinds = [None if "text" in stub else (stub["alert_id"], stub["version"], stub["channel"], stub.get("language"))
                 for _, stub in stubs]
        first = {kind: stub for kind, (_, stub) in zip(kinds, stubs, strict=True) if kind is not None}
        records = await self.alerts.records_for(first.values())
        shared: dict[Any, tuple[dict[str, Any], int]] = {}
        for version_kind, stub in first.items():
            record = records.get(stub["alert_id"], {})
            shared[version_kind] = (shared_fields(record, stub), latest_version(record))
        claimed = []
        for kind, (entry_id, stub) in zip(kinds, stubs, strict=True):
            latest = None
            if kind is not None:
                fields, latest = shared[kind]
                stub = {**fields, **stub}
            claimed.append(Claimed(stream, entry_id, DeliveryJob.model_validate(stub), latest))
        return claimed

    async def read(self, channel: str, consumer: str, count: int, block_ms: int) -> list[Claimed]:
        """New jobs for this consumer, loudest lane first. Shard lanes are read one slot at a
        time (a cluster serves one slot per command), starting at a rotating shard; only when
        all are empty does the read block, on the next shard and for at most SHARDED_BLOCK_MS."""
        shards = self.keys.shards
        if shards == 1:
            return await self._read_shard(channel, 0, consumer, count, block_ms)
        self._rotation = (self._rotation + 1) % shards
        order = [(self._rotation + i) % shards for i in range(shards)]
        claimed: list[Claimed] = []
        for shard in order:
            claimed += await self._read_shard(channel, shard, consumer, count - len(claimed), None)
            if len(claimed) >= count:
                break
        if not claimed:
            claimed = await self._read_shard(channel, order[0], consumer, count, min(block_ms, SHARDED_BLOCK_MS))
        return sorted(claimed, key=lambda c: -c.job.tier.rank)  # stable: each lane's order kept

    async def _read_shard(self, channel: str, shard: int, consumer: str, count: int,
                          block_ms: int | None) -> list[Claimed]:
        lanes = self.lanes(channel, shard)
        reply: Any = await self.redis.xreadgroup(self.keys.group(channel), consumer, dict.fromkeys(lanes, ">"),
                                                 count=count, block=block_ms)
        by_stream = {stream: entries for stream, entries in reply or []}
        return [c for lane in lanes for c in await self._decode(lane, by_stream.get(lane, []))]

    async def reclaim(self, channel: str, consumer: str, min_idle_ms: int, count: int) -> list[Claimed]:
        """Jobs a dead consumer held longer than the visibility timeout (XAUTOCLAIM)."""
        claimed: list[Claimed] = []
        for shard in range(self.keys.shards):
            for lane in self.lanes(channel, shard):
                reply: Any = await self.redis.xautoclaim(lane, self.keys.group(channel), consumer,
                                                         min_idle_time=min_idle_ms, count=count)
                claimed += await self._decode(lane, reply[1])  # [next cursor, entries, deleted ids]
        return claimed

    async def ack_entries(self, channel: str, claimed: Sequence[Claimed]) -> None:
        by_stream: dict[str, list[str]] = {}
        for item in claimed:
            by_stream.setdefault(item.stream, []).append(item.entry_id)
        if not by_stream:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream, ids in by_stream.items():
                pipe.xack(stream, self.keys.group(channel), *ids)
                pipe.xdel(stream, *ids)
            await pipe.execute()

    async def dead_letter(self, items: Sequence[Claimed], reason: str) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for item in items:
                payload = orjson.dumps({"job": item.job.model_dump(mode="json"), "reason": reason}).decode()
                pipe.xadd(self.keys.dead_letters(item.job.channel), {"entry": payload})
            await pipe.execute()

    async def retry_later(self, jobs: Sequence[tuple[DeliveryJob, float]]) -> None:
        """Park jobs in their shard's delayed set until their time comes (next attempt number)."""
        if not jobs:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for job, due in jobs:
                retry = job.model_copy(update={"attempt": job.attempt + 1})
                member = f"{retry.tier.value}|{orjson.dumps(retry.model_dump(mode='json')).decode()}"
                pipe.zadd(self.keys.delayed(job.channel, self.keys.shard(job.recipient)), {member: due})
            await pipe.execute()

    async def promote_due(self, channel: str, now: float, limit: int = 1000) -> int:
        """Move retries that are due back into their lanes; returns how many."""
        moved = 0
        for shard in range(self.keys.shards):
            keys = [self.keys.delayed(channel, shard), *self.lanes(channel, shard)]
            moved += int(await self._promote(keys=keys, args=[now, limit, *(t.value for t in TIERS)]))
        return moved

    async def delayed(self, channel: str) -> int:
        """Retries waiting, over every shard."""
        return sum([int(await self.redis.zcard(self.keys.delayed(channel, s))) for s in range(self.keys.shards)])

    async def queue_stats(self, channel: str) -> dict[str, Any]:
        """Depth and oldest-job age per tier (over the shards), plus retries waiting and dead
        letters (for metrics)."""
        now = time.time()
        lanes: dict[str, Any] = {}
        for tier in WARNING_TIERS:
            depth = pending = 0
            age = 0.0
            for shard in range(self.keys.shards):
                lane = self.keys.queue(channel, tier, shard)
                length = int(await self.redis.xlen(lane))
                oldest = await self.redis.xrange(lane, count=1)
                try:
                    found: Any = await self.redis.xpending(lane, self.keys.group(channel)) if length else {}
                except ResponseError:  # no consumer has created the group yet
                    found = {}
                depth += length
                pending += int(found.get("pending", 0) if found else 0)
                if oldest:
                    age = max(age, now - int(str(oldest[0][0]).split("-")[0]) / 1000)
            lanes[tier.value] = {"depth": depth, "pending": pending, "oldest_age_s": round(age, 3)}
        return {"channel": channel, "lanes": lanes, "delayed": await self.delayed(channel),
                "dead": await self.redis.xlen(self.keys.dead_letters(channel))}


def check_shard_lanes(client: Any, keys: Keys, channels: Iterable[str]) -> None:
    """At startup (a synchronous client): the queues were written with ``keys.shards`` lanes,
    or are empty — a recipient moved to another shard would lose its idempotency set and its
    queued jobs would wait in lanes nobody reads. Raises ConfigError naming the setting."""
    stored = client.get(keys.shard_lanes)
    if stored is not None and int(stored) != keys.shards:
        old = int(stored)
        held = {f"{channel} shard {shard}": n for channel in channels for shard in range(old)
                if (n := sum(int(client.xlen(keys.queue(channel, tier, shard))) for tier in TIERS)
                    + int(client.zcard(keys.delayed(channel, shard))))}
        if held:
            where = ", ".join(f"{lane}: {n}" for lane, n in sorted(held.items())[:3])
            raise ConfigError(f"WARNING_SHARD_LANES: {keys.shards}, but the queues still hold jobs written with {old} "
                             f"shard lanes ({where}…): let the consumers drain them, or set WARNING_SHARD_LANES={old}")
    if stored is None or int(stored) != keys.shards:
        client.set(keys.shard_lanes, keys.shards)
