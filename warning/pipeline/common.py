"""Helpers every agent shares: raw-bytes topics, sending refusals to warning.rejected, and
holding on while Redis is down."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import faust
import structlog

from warning import redis_client
from warning.config import Settings
from warning.ingest import rejection
from warning.redis_client import REDIS_OR_SOCKET_DOWN

T = TypeVar("T")

log = structlog.get_logger()


def raw_topic(app: faust.App, *names: str) -> faust.TopicT:
    """Bytes in, bytes out: agents parse themselves so a bad record can be refused, not lost.
    Several names make one stream of co-partitioned topics (Faust assigns them together)."""
    return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw",
                     value_serializer="raw", partitions=app.conf.topic_partitions)


def changelog_configs(settings: Settings) -> dict[str, str]:
    """A table's changelog topic as every topic the pipeline creates: writes on min ISR copies."""
    return {"min.insync.replicas": str(settings.min_insync_replicas)}


async def reject(topic: faust.TopicT, stage: str, reason: str, source_topic: str,
                 key: bytes | None, payload: bytes) -> None:
    record = rejection(stage, reason, source_topic, key, payload)
    log.warning("record_rejected", stage=stage, reason=reason, source_topic=source_topic,
                key=record.key)
    await topic.send(key=key, value=record.model_dump_json().encode())


async def until_redis_answers(redis: Any, call: Callable[[], Awaitable[T]], **where: Any) -> T:
    """``call()`` retried while Redis is down (0.5 s doubling to 10 s), each miss logged with
    ``where`` (the alert ids, what was being written). An agent holds its partitions meanwhile:
    a warning waits, it is never dropped, and every stage retried is idempotent."""
    delay = 0.5
    while True:
        try:
            return await call()
        except REDIS_OR_SOCKET_DOWN as exc:
            log.error("redis_unavailable_retrying", **where, **redis_client.where(redis), error=str(exc),
                      retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
