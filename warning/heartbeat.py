"""Heartbeats: every long-running pipeline process says it is alive, in Redis, every
``BEAT_S``; health checks, `/metrics` (``warning_processes_alive{role}``) and the
``WarningProcessDown`` alert read them. This module owns ``heartbeats:{role}`` (a sorted
set of instances by their last beat) and ``heartbeat:{role}:{instance}`` (what it said,
expiring ten beats' worth after the process stops).

A beat carries when the process last took work (``last_event_at``): a Faust worker that is
up but takes nothing while its input lag grows is not healthy, which no exit shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
import structlog

from warning.keys import Keys
from warning.redis_client import REDIS_OR_SOCKET_DOWN

BEAT_S = 5.0
ALIVE_S = 30.0  # no beat for this long: the process is gone
KEEP_S = 10 * ALIVE_S  # a stopped process's last beat is kept this long (health says how long ago)
ROLES = ("worker", "consumer-sms", "consumer-push", "consumer-grid", "consumer-cell_broadcast", "escalator")


def instance_name() -> str:
    """host-pid: in a container the host is the pod or container, so a probe inside finds it."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class Pulse:
    """What a process last did, for its next beat (set on the hot path: an attribute write)."""

    role: str
    details: dict[str, Any] = field(default_factory=dict)  # e.g. a consumer's provider mode
    instance: str = field(default_factory=instance_name)
    last_event_at: float = field(default_factory=time.time)
    started_at: float = field(default_factory=time.time)

    def took_work(self) -> None:
        self.last_event_at = time.time()


async def beat(redis: aioredis.Redis, keys: Keys, pulse: Pulse) -> None:
    now = time.time()
    info = {"instance": pulse.instance, "host": socket.gethostname(), "pid": os.getpid(), "at": now,
            "started_at": pulse.started_at, "last_event_at": pulse.last_event_at, **pulse.details}
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zadd(keys.heartbeats(pulse.role), {pulse.instance: now})
        pipe.zremrangebyscore(keys.heartbeats(pulse.role), "-inf", now - KEEP_S)
        pipe.set(keys.heartbeat_info(pulse.role, pulse.instance), orjson.dumps(info), ex=int(KEEP_S))
        await pipe.execute()


@contextlib.asynccontextmanager
async def beating(redis: aioredis.Redis, keys: Keys, pulse: Pulse) -> AsyncIterator[Pulse]:
    """Beat in the background while the body runs; a Redis outage only skips beats."""

    async def loop() -> None:
        while True:
            try:
                await beat(redis, keys, pulse)
            except REDIS_OR_SOCKET_DOWN as exc:
                structlog.get_logger().warning("heartbeat_skipped", role=pulse.role, error=str(exc))
            await asyncio.sleep(BEAT_S)

    task = asyncio.create_task(loop())
    try:
        yield pulse
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def alive(redis: aioredis.Redis, keys: Keys, now: float | None = None) -> dict[str, int]:
    """How many live processes each role has (for /metrics)."""
    at = time.time() if now is None else now
    async with redis.pipeline(transaction=False) as pipe:
        for role in ROLES:
            pipe.zcount(keys.heartbeats(role), at - ALIVE_S, "+inf")
        counts = await pipe.execute()
    return {role: int(n) for role, n in zip(ROLES, counts, strict=True)}


async def _beats(redis: aioredis.Redis, keys: Keys, role: str, within_s: float) -> list[dict[str, Any]]:
    instances = [str(i) for i in await redis.zrangebyscore(keys.heartbeats(role), time.time() - within_s, "+inf")]
    if not instances:
        return []
    found = await redis.mget([keys.heartbeat_info(role, i) for i in instances])
    return sorted((orjson.loads(raw) for raw in found if raw), key=lambda b: -float(b["at"]))


async def live_beats(redis: aioredis.Redis, keys: Keys, role: str) -> list[dict[str, Any]]:
    """What each live process of a role said last, newest first."""
    return await _beats(redis, keys, role, ALIVE_S)


async def beats_here(redis: aioredis.Redis, keys: Keys, role: str) -> list[dict[str, Any]]:
    """The beats of this host's processes of a role (a probe runs in the process's container),
    newest first, the stopped ones too (for as long as they are kept)."""
    host = socket.gethostname()
    return [b for b in await _beats(redis, keys, role, KEEP_S) if b.get("host") == host]
