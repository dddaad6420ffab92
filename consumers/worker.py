"""One loop for every channel: claim -> drop stale / superseded -> send -> ack, retry or dead-letter.

At-least-once from Redis, made effectively once: a job already marked *sent* is never
handed to the provider again, so a job reclaimed from a crashed consumer after its send
is just acknowledged.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Sequence

import structlog

from consumers.notifier import Notifier, Outcome
from warning.queue import Claimed, DeliveryStore

log = structlog.get_logger()
MAX_ATTEMPTS = 5


class Worker:
    def __init__(self, store: DeliveryStore, notifier: Notifier, *, batch: int = 500,
                 visibility_timeout_s: float = 30.0, consumer: str | None = None) -> None:
        self.store = store
        self.notifier = notifier
        self.channel = notifier.channel
        self.batch = batch
        self.visibility_ms = int(visibility_timeout_s * 1000)
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self._last_reclaim = 0.0

    async def run(self, stop: asyncio.Event, burst: bool = False) -> int:
        """Serve until ``stop`` is set (or, in burst mode, until the queues are empty)."""
        await self.store.ensure_group(self.channel)
        log.info("consumer_started", channel=self.channel, consumer=self.consumer)
        handled = 0
        block_ms = 20 if burst else 1000
        while not stop.is_set():
            claimed = await self._next(block_ms)
            if not claimed:
                if burst:
                    break
                continue
            await self.process(claimed)
            handled += len(claimed)
        return handled

    async def _next(self, block_ms: int) -> list[Claimed]:
        now = time.monotonic()
        if now - self._last_reclaim >= self.visibility_ms / 2000:
            self._last_reclaim = now
            reclaimed = await self.store.reclaim(self.channel, self.consumer, self.visibility_ms, self.batch)
            if reclaimed:
                log.warning("jobs_reclaimed", channel=self.channel, count=len(reclaimed))
                return reclaimed
        return await self.store.read(self.channel, self.consumer, self.batch, block_ms=block_ms)

    async def process(self, claimed: Sequence[Claimed]) -> None:
        now = time.time()
        versions = await self.store.current_versions(c.job.alert_id for c in claimed)
        statuses = await self.store.statuses([c.job for c in claimed])
        done, expired, superseded, to_send = [], [], [], []
        for item, status in zip(claimed, statuses, strict=True):
            if status == "sent":
                done.append(item)  # a reclaimed job whose send had already happened
            elif item.job.expires <= now:
                expired.append(item)
            elif item.job.version < versions.get(item.job.alert_id, 0):
                superseded.append(item)
            else:
                to_send.append(item)
        await self._drop(expired, "expired", "alert expired before delivery")
        await self._drop(superseded, "superseded", "a newer version of the alert exists")
        if to_send:
            await self._send(to_send)
        await self.store.ack_entries(self.channel, done)

    async def _drop(self, items: list[Claimed], status: str, reason: str) -> None:
        if not items:
            return
        for item in items:
            log.info("delivery_dropped", delivery_id=item.job.delivery_id, alert_id=item.job.alert_id,
                     status=status)
        await self.store.transition([i.job for i in items], "queued", status, reason)
        await self.store.ack_entries(self.channel, items)

    async def _send(self, items: list[Claimed]) -> None:
        jobs = [i.job for i in items]
        await self.store.transition(jobs, "queued", "sending")
        try:
            results = await self.notifier.send_batch(jobs)
        except Exception as exc:
            log.exception("notifier_failed", channel=self.channel, count=len(jobs))
            results = [None] * len(jobs)  # type: ignore[list-item]
            reason = f"notifier raised {type(exc).__name__}: {exc}"
        else:
            reason = ""
        sent, retry, failed = [], [], []
        for item, result in zip(items, results, strict=True):
            if result is not None and result.outcome is Outcome.delivered:
                sent.append(item)
            elif (result is None or result.outcome is Outcome.retryable) and item.job.attempt < MAX_ATTEMPTS:
                retry.append(item)
            else:
                failed.append((item, result.reason if result else reason))
        await self.store.transition([i.job for i in sent], "sending", "sent")
        for item in sent:
            log.info("delivery_sent", delivery_id=item.job.delivery_id, alert_id=item.job.alert_id,
                     channel=self.channel)
        for item in retry:
            await self.store.requeue(item)
        await self.store.transition([i.job for i in retry], "sending", "queued", "retrying")
        for item, why in failed:
            log.warning("delivery_failed", delivery_id=item.job.delivery_id, alert_id=item.job.alert_id,
                        reason=why)
            await self.store.dead_letter(item, why)
        await self.store.transition([i.job for i, _ in failed], "sending", "failed")
        await self.store.ack_entries(self.channel, items)
