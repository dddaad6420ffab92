"""The delivery side's Redis repositories, each the one owner of its keys, fields and Lua:

- :mod:`.alerts` — alert records (every field name of an alert's hash) and the active index;
- :mod:`.queue` — the shard lanes of each channel, retries and dead letters;
- :mod:`.receipts` — delivery statuses, their counts and reach, receipts awaited;
- :mod:`.rates` — the senders' shared token buckets;
- :mod:`.replication` — WAIT after the writes that must outlive a failover.

Each script is a ``.lua`` file beside the module that runs it, loaded when the repository
is made (never at import). tests/fakes/store.py has an in-memory fake of each repository.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from warning.keys import Keys
from warning.store.alerts import AlertRecords
from warning.store.queue import DeliveryQueue
from warning.store.rates import RateBuckets
from warning.store.receipts import DeliveryReceipts
from warning.store.replication import ReplicaWait


@dataclass
class DeliveryStore:
    """The repositories one process uses, over one Redis client (the bootstrap makes it)."""

    redis: aioredis.Redis
    keys: Keys
    alerts: AlertRecords
    queue: DeliveryQueue
    receipts: DeliveryReceipts
    rates: RateBuckets
    replication: ReplicaWait

    @classmethod
    def create(cls, redis: aioredis.Redis, keys: Keys, wait_replicas: int = 0,
               wait_timeout_ms: int = 100) -> DeliveryStore:
        replication = ReplicaWait(wait_replicas, wait_timeout_ms)
        alerts = AlertRecords(redis, keys)
        return cls(redis=redis, keys=keys, alerts=alerts, queue=DeliveryQueue(redis, keys, alerts, replication),
                   receipts=DeliveryReceipts(redis, keys, replication), rates=RateBuckets(redis, keys),
                   replication=replication)
