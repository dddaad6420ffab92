"""A recipient a channel could not reach gets their next channel; a resident none reached
becomes a door-knock task for their grid's workers.

Both steps are idempotent (the enqueue remembers ``channel:recipient`` per alert version;
a task is set once per resident), so a worker and a callback racing over the same
failure, or a replay, do it once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from warning.delivery.receipts import Receipts
from warning.keys import RETENTION_S
from warning.models import DeliveryJob

log = structlog.get_logger()


def next_channel(job: DeliveryJob) -> DeliveryJob | None:
    if not job.fallback:
        return None
    channel, address = job.fallback[0]
    return job.model_copy(update={"channel": channel, "address": address, "fallback": job.fallback[1:],
                                  "attempt": 1})


async def fall_back(receipts: Receipts, jobs: Sequence[DeliveryJob], reason: str) -> tuple[int, int]:
    """Queue each job's next channel, or a door knock; returns (re-queued, door knocks)."""
    store = receipts.store
    nxt = [n for n in (next_channel(job) for job in jobs) if n is not None]
    if nxt:
        await store.queue.enqueue(nxt)
    stranded = [job for job in jobs if not job.fallback]
    knocks = 0
    if stranded:
        where = await store.redis.hmget(store.keys.people, [job.recipient for job in stranded])
        for job, raw in zip(stranded, where, strict=True):
            role, _, grids = (raw.decode() if isinstance(raw, bytes) else raw or "").partition(" ")
            if role != "resident" or not grids:
                continue  # staff and grid endpoints are covered by escalation, not door knocks
            task = {"alert_id": job.alert_id, "version": job.version, "resident": job.recipient,
                    "grid": grids.split(",")[0], "tried": job.channel, "reason": reason, "at": time.time()}
            key = store.keys.door_knocks(job.alert_id)
            if await store.redis.hsetnx(key, job.recipient, orjson.dumps(task)):
                await store.redis.expire(key, int(max(job.expires - time.time(), 0) + RETENTION_S))
                knocks += 1
                await store.redis.hincrby(store.keys.stats, "door_knocks", 1)
                log.warning("door_knock_task", alert_id=job.alert_id, delivery_id=job.delivery_id,
                            grid=task["grid"], reason=reason)
                await receipts.emit([job], "door_knock", reason, grid=task["grid"])
    return len(nxt), knocks



@dataclass(frozen=True)
class FinalReceipt:
    """A provider's last word on a delivery it took: delivered, undelivered or failed."""

    delivery_id: str
    status: str
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


async def settle_receipts(receipts: Receipts, channel: str, finals: Sequence[FinalReceipt]) -> list[bool]:
    """Final receipts (Twilio's callback, SMPP deliver_sm): each receipt moves once, and
    anything but *delivered* goes on to the recipient's next channel — one round trip to
    settle them all, one move per outcome. False where nothing awaited it (already
    settled, or timed out into the next channel)."""
    jobs = await receipts.store.receipts.settle_many(channel, [f.delivery_id for f in finals])
    groups: dict[bytes, tuple[FinalReceipt, list[DeliveryJob]]] = {}
    for final, job in zip(finals, jobs, strict=True):
        if job is not None:
            key = orjson.dumps([final.status, final.reason, final.detail], option=orjson.OPT_SORT_KEYS)
            groups.setdefault(key, (final, []))[1].append(job)
    for final, settled in groups.values():
        await receipts.move(settled, final.status, final.reason, **final.detail)
        if final.status != "delivered":
            await fall_back(receipts, settled, final.reason)
    return [job is not None for job in jobs]
