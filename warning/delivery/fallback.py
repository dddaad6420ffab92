"""A recipient a channel could not reach gets their next channel; a resident none reached
becomes a door-knock task for their grid's workers.

Both steps are idempotent (the enqueue remembers ``channel:recipient`` per alert version;
a task is set once per resident), so a worker and a callback racing over the same
failure, or a replay, do it once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import orjson
import structlog

from warning.delivery.receipts import Receipts
from warning.models import DeliveryJob
from warning.queue import RETENTION_S

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
        await store.enqueue(nxt)
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


async def settle_receipt(receipts: Receipts, channel: str, delivery_id: str, status: str, reason: str,
                         **detail: object) -> bool:
    """A provider's final receipt for a delivery it took (Twilio's callback, an SMPP
    deliver_sm): the receipt moves once, and anything but *delivered* goes on to the
    recipient's next channel. False when nothing awaited it (already settled, timed out)."""
    job = await receipts.store.settle(channel, delivery_id)
    if job is None:
        return False
    await receipts.move([job], status, reason, **detail)
    if status != "delivered":
        await fall_back(receipts, [job], reason)
    return True
