"""Helpers every agent shares: raw-bytes topics and sending refusals to warning.rejected."""

from __future__ import annotations

import faust
import structlog

from warning.config import Settings
from warning.ingest import rejection

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
