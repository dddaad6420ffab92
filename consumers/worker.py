"""One loop for every channel: claim -> drop stale / superseded -> pace -> send -> ack, retry or fall back.

At-least-once from Redis, made effectively once: a job already marked *sent* is never
handed to the provider again, so a job reclaimed from a crashed consumer after its send
is just acknowledged. What happens after a handoff (the *sent* mark, retries, the stream
ack) is retried until Redis answers, so a Redis restart cannot turn a batch the provider
took into one that is sent again; a consumer killed in that window leaves its jobs in
*sending*, and whoever reclaims them asks a provider that can be asked (Reconciling)
before sending. Retryable failures wait in a delayed set (exponential backoff with
jitter) until a deadline; then, as with a permanent failure, the job goes to the dead
letters and the recipient's next channel gets it.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial

import structlog

from consumers.notifier import Notifier, Outcome, Reconciling, Result
from warning.delivery.fallback import fall_back
from warning.delivery.receipts import Receipts
from warning.models import DeliveryJob
from warning.redis_client import REDIS_DOWN, where
from warning.store import DeliveryStore
from warning.store.queue import Claimed
from warning.store.receipts import HANDED_OFF

log = structlog.get_logger()


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_s: float = 1.0
    cap_s: float = 60.0
    deadline_s: float = 300.0  # counted from the alert version's issue

    def next_try(self, job: DeliveryJob, now: float) -> float | None:
        """When to try again, or None: out of attempts, past the deadline or the alert's expiry."""
        if job.attempt >= self.max_attempts:
            return None
        backoff = min(self.cap_s, self.base_s * 2 ** (job.attempt - 1))
        due = now + backoff * (0.5 + random.random() / 2)  # equal jitter: consumers do not stampede
        return due if due <= min(job.issued_at + self.deadline_s, job.expires) else None


@dataclass(frozen=True)
class RateLimit:
    per_s: float
    burst: float


Forget = Callable[[DeliveryJob], Awaitable[object]]  # drop a dead address from the directory


class Worker:
    def __init__(self, store: DeliveryStore, notifier: Notifier, *, batch: int = 500,
                 visibility_timeout_s: float = 30.0, consumer: str | None = None,
                 retry: RetryPolicy | None = None, rate: RateLimit | None = None,
                 receipts: Receipts | None = None, receipt_timeout_s: float = 300.0,
                 forget: Forget | None = None) -> None:
        self.store = store
        self.receipts = receipts or Receipts(store, None)
        self.receipt_timeout_s = receipt_timeout_s
        self.forget = forget
        self.notifier = notifier
        self.channel = notifier.channel
        self.batch = batch
        self.visibility_ms = int(visibility_timeout_s * 1000)
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.retry = retry or RetryPolicy()
        self.rate = rate
        self._last_reclaim = 0.0
        self._stop = asyncio.Event()

    async def run(self, stop: asyncio.Event, burst: bool = False) -> int:
        """Serve until ``stop`` is set (or, in burst mode, until the queues are empty)."""
        self._stop = stop
        await self.store.queue.ensure_group(self.channel)
        log.info("consumer_started", channel=self.channel, consumer=self.consumer)
        handled = 0
        block_ms = 20 if burst else 1000
        delay = 0.2
        while not stop.is_set():
            try:
                await self.store.queue.promote_due(self.channel, time.time())
                await self._overdue_receipts()
                claimed, reclaimed = await self._next(block_ms)
                if not claimed:
                    if burst and not await self.store.queue.delayed(self.channel):
                        break
                    continue
                await self.process(claimed, reclaimed=reclaimed)
                handled += len(claimed)
                delay = 0.2
            except REDIS_DOWN as exc:
                # Redis restarting: what was claimed and not acknowledged is still pending in
                # the stream (AOF keeps it) and is reclaimed; wait and carry on, never exit.
                log.error("redis_unavailable_retrying", channel=self.channel, error=str(exc), retry_in_s=delay,
                          **where(self.store.redis))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                self._last_reclaim = 0.0
        return handled

    async def _next(self, block_ms: int) -> tuple[list[Claimed], bool]:
        """The next batch, and whether it was reclaimed from a consumer that went silent."""
        now = time.monotonic()
        if now - self._last_reclaim >= self.visibility_ms / 2000:
            self._last_reclaim = now
            reclaimed = await self.store.queue.reclaim(self.channel, self.consumer, self.visibility_ms, self.batch)
            if reclaimed:
                log.warning("jobs_reclaimed", channel=self.channel, count=len(reclaimed))
                return reclaimed, True
        return await self.store.queue.read(self.channel, self.consumer, self.batch, block_ms=block_ms), False

    async def process(self, claimed: Sequence[Claimed], reclaimed: bool = True) -> None:
        now = time.time()
        # The alert's version came with most jobs (their alert record is read to decode them).
        versions = {c.job.alert_id: c.latest for c in claimed if c.latest is not None}
        if unread := {c.job.alert_id for c in claimed} - versions.keys():
            versions.update(await self.store.alerts.current_versions(unread))
        # Only a reclaimed job can have been sent already (by a consumer that died before
        # acknowledging it); a freshly read one cannot, since enqueue never duplicates.
        statuses = await self.store.receipts.statuses([c.job for c in claimed]) if reclaimed else [None] * len(claimed)
        taken = await self._reconcile([item for item, status in zip(claimed, statuses, strict=True)
                                       if status == "sending"])
        done, expired, superseded, to_send = [], [], [], []
        for item, status in zip(claimed, statuses, strict=True):
            if status in HANDED_OFF or item.job.delivery_id in taken:
                done.append(item)  # a reclaimed job whose send had already happened
            elif item.job.expires <= now:
                expired.append(item)
            elif item.job.version < versions.get(item.job.alert_id, 0):
                superseded.append(item)
            else:
                to_send.append(item)
        await self._drop(expired, "expired", "alert expired before delivery")
        await self._drop(superseded, "superseded", "a newer version of the alert exists")
        while to_send:  # loudest lane first; the shared bucket paces them
            now_batch = to_send
            if self.rate is not None:
                granted, wait = await self.store.rates.take_tokens(self.channel, len(to_send), self.rate.per_s,
                                                             self.rate.burst)
                if not granted:
                    await asyncio.sleep(max(wait, 0.001))
                    continue
                now_batch = to_send[:granted]
            to_send = to_send[len(now_batch):]
            await self._send(now_batch)
        await self.store.queue.ack_entries(self.channel, done)

    async def _reconcile(self, in_doubt: list[Claimed]) -> set[str]:
        """Jobs a vanished consumer was sending: the ones the provider has are marked sent."""
        if not in_doubt or not isinstance(self.notifier, Reconciling):
            return set()
        taken = await self.notifier.handed_off([item.job for item in in_doubt])
        if taken:
            log.warning("handoff_reconciled", channel=self.channel, count=len(taken),
                        alert_ids=sorted({i.job.alert_id for i in in_doubt if i.job.delivery_id in taken}))
            await self.receipts.move([i.job for i in in_doubt if i.job.delivery_id in taken], "sent",
                                     "reconciled with the provider after a consumer crash")
        return taken

    async def _drop(self, items: list[Claimed], status: str, reason: str) -> None:
        if not items:
            return
        for item in items:
            log.info("delivery_dropped", delivery_id=item.job.delivery_id, alert_id=item.job.alert_id,
                     status=status)
        await self.receipts.move([i.job for i in items], status, reason)
        await self.store.queue.ack_entries(self.channel, items)

    async def _send(self, items: list[Claimed]) -> None:
        jobs = [i.job for i in items]
        await self.receipts.move(jobs, "sending")
        try:
            results: list[Result | None] = list(await self.notifier.send_batch(jobs))
            crash = ""
        except Exception as exc:
            log.exception("notifier_failed", channel=self.channel, count=len(jobs))
            results, crash = [None] * len(jobs), f"notifier raised {type(exc).__name__}: {exc}"
        now = time.time()
        sent, awaiting, retry, failed = [], [], [], []
        for item, result in zip(items, results, strict=True):
            if result is not None and result.outcome is Outcome.delivered:
                sent.append(item.job)
                if result.awaits_receipt:
                    awaiting.append(item.job)
                continue
            if result is not None and result.unregistered and self.forget is not None:
                await self.forget(item.job)
            reason = result.reason if result is not None else crash
            due = self.retry.next_try(item.job, now) if result is None or result.outcome is Outcome.retryable \
                else None
            if due is not None:
                retry.append((item.job, due))
            else:
                failed.append((item, reason))
        # Await first: a receipt that arrives before the "sent" mark must find the job.
        await self._persist("await_receipt", partial(self.store.receipts.await_receipt, awaiting,
                                                     now + self.receipt_timeout_s))
        await self._persist("mark_sent", partial(self.receipts.move, sent, "sent"))
        for job in sent:  # per delivery at debug; the batch line below is what INFO shows
            log.debug("delivery_sent", delivery_id=job.delivery_id, alert_id=job.alert_id, channel=self.channel)
        if sent:
            log.info("deliveries_sent", channel=self.channel, count=len(sent),
                     alert_ids=sorted({job.alert_id for job in sent}))
        await self._persist("retry_later", partial(self.store.queue.retry_later, retry))
        await self._persist("mark_retrying", partial(self.receipts.move, [j for j, _ in retry], "queued", "retrying"))
        by_reason: dict[str, list[Claimed]] = {}
        for item, why in failed:
            log.warning("delivery_failed", delivery_id=item.job.delivery_id, alert_id=item.job.alert_id,
                        reason=why, fallback=[c for c, _ in item.job.fallback])
            by_reason.setdefault(why, []).append(item)
        for why, items_failed in by_reason.items():  # a batch failing alike is one receipt call
            jobs_failed = [i.job for i in items_failed]
            await self._persist("dead_letter", partial(self.store.queue.dead_letter, items_failed, why))
            await self._persist("mark_failed", partial(self.receipts.move, jobs_failed, "failed", why))
            await self._persist("fall_back", partial(fall_back, self.receipts, jobs_failed, why))
        await self._persist("ack", partial(self.store.queue.ack_entries, self.channel, items))

    async def _persist(self, step: str, write: Callable[[], Awaitable[object]]) -> None:
        """A write after a handoff, retried until Redis answers (each step is idempotent).

        Given up only on shutdown: the batch then stays pending and is reclaimed (and
        reconciled where the provider can be asked)."""
        delay = 0.2
        while True:
            try:
                await write()
                return
            except REDIS_DOWN as exc:
                if self._stop.is_set():
                    raise
                log.error("redis_unavailable_retrying", channel=self.channel, step=step, error=str(exc),
                          **where(self.store.redis),
                          retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _overdue_receipts(self) -> None:
        """Taken by the provider, never confirmed in time: treated as not reached."""
        overdue = await self.store.receipts.overdue(self.channel, time.time())
        if overdue:
            reason = f"no delivery receipt within {self.receipt_timeout_s:.0f}s"
            for job in overdue:
                log.warning("receipt_overdue", delivery_id=job.delivery_id, alert_id=job.alert_id)
            await self.receipts.move(overdue, "unconfirmed", reason)
            await fall_back(self.receipts, overdue, reason)
