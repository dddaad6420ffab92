"""Delivery receipts: each delivery's status hash, the per-alert counts of a shard, the
handoff-latency histograms, and the jobs whose provider receipt is still to come."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

import redis.asyncio as aioredis

from warning import reach
from warning.delivery.cell_broadcast import CHANNEL as BROADCAST
from warning.keys import RETENTION_S, Keys
from warning.models import DeliveryJob, is_drill
from warning.store.replication import ReplicaWait
from warning.store.scripts import lua

# Statuses after the provider took the message: such a job is never handed over again.
HANDED_OFF = frozenset({"sent", "delivered", "undelivered", "failed", "unconfirmed"})


class DeliveryReceipts:
    def __init__(self, redis: aioredis.Redis, keys: Keys, replication: ReplicaWait | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.replication = replication or ReplicaWait()
        self._mark = redis.register_script(lua("mark"))
        self._overdue = redis.register_script(lua("overdue"))
        self._settle = redis.register_script(lua("settle"))

    async def statuses(self, jobs: Sequence[DeliveryJob]) -> list[str | None]:
        return await self.statuses_of([job.delivery_id for job in jobs])

    async def statuses_of(self, delivery_ids: Sequence[str]) -> list[str | None]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for delivery_id in delivery_ids:
                pipe.hget(self.keys.delivery(delivery_id), "status")
            return list(await pipe.execute())

    async def counts(self, alert_id: str, channel: str) -> dict[str, int]:
        """Status -> deliveries of the alert on a channel in it, summed over the shards."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in range(self.keys.shards):
                pipe.hgetall(self.keys.delivery_counts(alert_id, channel, shard))
            total: Counter[str] = Counter()
            for raw in await pipe.execute():
                total.update({str(k): int(v) for k, v in raw.items()})
        return dict(total)

    async def transition(self, jobs: Sequence[DeliveryJob], new: str, reason: str = "") -> None:
        """Move deliveries to a status: every receipt, and the per-alert counts. Idempotent."""
        if not jobs:
            return
        now = time.time()
        by_shard: dict[tuple[str, int], list[DeliveryJob]] = {}
        by_alert: Counter[tuple[str, str, str, float]] = Counter()  # a batch is mostly a few alerts
        shard = self.keys.shard
        for job in jobs:
            by_shard.setdefault((job.channel, shard(job.recipient)), []).append(job)
            by_alert[job.alert_id, job.channel, job.tier.value, job.issued_at] += 1
        async with self.redis.pipeline(transaction=False) as pipe:
            for (channel, lane), group in by_shard.items():  # one script per shard: one slot each
                indexes: dict[str, int] = {}  # alert id -> its counts hash among the keys (1-based)
                args: list[str | int | float] = [new, now, reason, len(group)]
                keys: list[str] = []
                for job in group:
                    if (index := indexes.get(job.alert_id)) is None:
                        index = indexes[job.alert_id] = len(indexes) + 1
                    args += [job.attempt, int(max(job.expires - now, 0) + RETENTION_S), index]
                    keys.append(self.keys.delivery_in(channel, lane, job.alert_id, job.recipient, job.delivery_id))
                keys += [self.keys.delivery_counts(alert_id, channel, lane) for alert_id in indexes]
                await self._mark(keys=keys, args=args, client=pipe)
            stats: Counter[tuple[str, bool]] = Counter()
            reached: Counter[tuple[str, str, str, int]] = Counter()
            for (alert_id, channel, tier, issued_at), n in by_alert.items():
                stats[channel, is_drill(alert_id)] += n
                if new == "sent" and channel != BROADCAST:  # a broadcast is no person reached
                    reached[alert_id, channel, tier, reach.bucket(now - issued_at)] += n
            for (channel, drill), n in stats.items():
                pipe.hincrby(self.keys.stats, f"deliveries{'-drill' if drill else ''}:{channel}:{new}", n)
            for (alert_id, channel, tier, bucket), n in reached.items():
                pipe.hincrby(self.keys.reach(alert_id), str(bucket), n)
                pipe.hincrby(self.keys.reach_channel(alert_id, channel), str(bucket), n)
                pipe.hincrby(self.keys.reach_all(channel, tier, is_drill(alert_id)), str(bucket), n)
            # what keeps a job from a second handoff
            await self.replication.execute(pipe, new if new in ("sending", "sent") else None)

    async def await_receipt(self, jobs: Sequence[DeliveryJob], due: float) -> None:
        """Remember jobs a provider took whose delivery receipt is still to come, until ``due``."""
        if not jobs:
            return
        channel = jobs[0].channel
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.awaiting_jobs(channel),
                      mapping={job.delivery_id: job.model_dump_json() for job in jobs})
            pipe.zadd(self.keys.awaiting(channel), {job.delivery_id: due for job in jobs})
            await pipe.execute()

    async def settle(self, channel: str, delivery_id: str) -> DeliveryJob | None:
        """The job whose receipt just came (None if already settled or never awaited)."""
        return (await self.settle_many(channel, [delivery_id]))[0]

    async def settle_many(self, channel: str, delivery_ids: Sequence[str]) -> list[DeliveryJob | None]:
        """:meth:`settle` for a batch of receipts, in one round trip."""
        keys = [self.keys.awaiting(channel), self.keys.awaiting_jobs(channel)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for delivery_id in delivery_ids:
                await self._settle(keys=keys, args=[delivery_id], client=pipe)
            raws = await pipe.execute()
        return [DeliveryJob.model_validate_json(raw) if raw else None for raw in raws]

    async def overdue(self, channel: str, now: float, limit: int = 500) -> list[DeliveryJob]:
        """Jobs whose receipt did not come in time, each returned to exactly one caller."""
        raws = await self._overdue(keys=[self.keys.awaiting(channel), self.keys.awaiting_jobs(channel)],
                                   args=[now, limit])
        return [DeliveryJob.model_validate_json(raw) for raw in raws]
