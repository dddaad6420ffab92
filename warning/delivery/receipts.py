"""Receipts: every status change of a delivery, stored in Redis and emitted on ``warning.receipts``.

Redis holds each delivery's receipt (status plus the time of every status it passed);
the topic is the stream of changes for everyone else (dashboards, archives, the
after-action report). A change of many deliveries at once (a batch handed to a provider)
is one record listing their ids, keyed by alert: a million deliveries are a few thousand
records, not millions. If Kafka is unreachable the receipt is still in Redis and the
record is logged as lost from the stream; delivery never waits for the audit stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Protocol

import orjson
import structlog
from aiokafka import AIOKafkaProducer

from warning.models import DeliveryJob
from warning.partitions import KeptHashPartitioner
from warning.store import DeliveryStore

log = structlog.get_logger()


class ReceiptLog(Protocol):
    async def emit(self, records: Sequence[dict[str, Any]]) -> None: ...


class KafkaReceiptLog:
    """Records to a topic, keyed by alert (per-alert order is the producer's send order).

    ``wait=False`` is for delivery receipts: the records are handed to the producer and
    confirmed in the background, so no warning waits ~5 ms for the audit stream before it
    is handed to a provider (Redis already holds the receipt). ``wait=True`` returns only
    once Kafka has them, for callers that mark an event published afterwards.
    """

    def __init__(self, bootstrap: str, topic: str, timeout_s: float = 10.0, wait: bool = True) -> None:
        self.topic = topic
        self.timeout_s = timeout_s
        self.wait = wait
        self._confirming: set[asyncio.Task[None]] = set()
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                          enable_idempotence=True, partitioner=KeptHashPartitioner())

    async def start(self) -> None:
        await self._producer.start()

    async def close(self) -> None:
        if self._confirming:
            await asyncio.gather(*self._confirming, return_exceptions=True)
        await self._producer.stop()

    async def emit(self, records: Sequence[dict[str, Any]]) -> None:
        try:
            sends = [await self._producer.send(self.topic, key=str(r["alert_id"]).encode(), value=orjson.dumps(r))
                     for r in records]
        except Exception as exc:
            self._lost(records, exc)
            return
        confirm = self._confirm(records, sends)
        if self.wait:
            await confirm
            return
        task = asyncio.create_task(confirm)
        self._confirming.add(task)
        task.add_done_callback(self._confirming.discard)

    async def _confirm(self, records: Sequence[dict[str, Any]], sends: list[asyncio.Future[Any]]) -> None:
        try:
            await asyncio.wait_for(asyncio.gather(*sends), self.timeout_s)
        except Exception as exc:
            self._lost(records, exc)

    def _lost(self, records: Sequence[dict[str, Any]], exc: Exception) -> None:
        """The receipts are in Redis; only the stream copy is missing."""
        log.error("receipts_not_emitted", topic=self.topic, records=len(records), error=str(exc),
                  alert_ids=sorted({str(r["alert_id"]) for r in records}))


class Receipts:
    """Status changes: the Redis receipt first, then the record on the topic."""

    def __init__(self, store: DeliveryStore, stream: ReceiptLog | None) -> None:
        self.store = store
        self.stream = stream

    async def move(self, jobs: Sequence[DeliveryJob], status: str, reason: str = "", **detail: Any) -> None:
        if not jobs:
            return
        await self.store.receipts.transition(jobs, status, reason)
        await self.emit(jobs, status, reason, **detail)

    async def emit(self, jobs: Sequence[DeliveryJob], status: str, reason: str = "", **detail: Any) -> None:
        if self.stream is None or not jobs:
            return
        now = time.time()
        groups: dict[tuple[str, int, str], list[str]] = {}
        for job in jobs:
            groups.setdefault((job.alert_id, job.version, job.channel), []).append(job.delivery_id)
        await self.stream.emit([{"alert_id": alert_id, "version": version, "channel": channel, "status": status,
                                 "reason": reason, "at": now, "deliveries": ids, **detail}
                                for (alert_id, version, channel), ids in groups.items()])
