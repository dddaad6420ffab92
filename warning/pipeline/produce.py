"""The lifecycle's records handed straight to Faust's Kafka producer: versions, lifecycle
states (and evaluate's grouped signals).

``Topic.send`` and ``Table.send_changelog`` wrap every record in Faust's promise
machinery (a FutureMessage, sensors, the stampede-guarded producer lookup, and for
changelogs the producer buffer, whose task hands records to aiokafka one at a time)
before aiokafka sees it. Here the bytes go to the same producer (idempotent, acks=all)
at once, serialized by the table's own codecs, so what lands in the topic is byte for
byte what Faust would have written. In the peer burst the lifecycle's two records an
alert sent this way took the worker from ~1,150 to ~780 µs an alert and Kafka from ~250
to ~137 µs (four alternating pairs each way; README, *Performance*). Station windows stay
on Faust's buffer: evaluate.py's flush says why.

What Faust's path did besides: its consumer flushes this producer before every offset
commit (so a batch's records are in Kafka before its signals are committed, as before);
the changelog callback only records offsets for persistent stores (RocksDB) and for
transactions, neither of which the worker uses (``store="memory://"``, at-least-once).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import faust

Sent = Awaitable[Any]  # aiokafka's RecordMetadata, once Kafka has the record


class DirectProducer:
    """``send`` a raw record, ``changelog`` a table write: each returns the acknowledgement
    to await, as ``Topic.send`` does."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> Sent:
        sent: Sent = await self.app.producer.send(topic, key, value, partition, None, None)
        return sent

    async def changelog(self, table: Any, partition: int, key: Any, value: Any) -> Sent:
        """The record ``table.send_changelog(partition, key, value)`` would write."""
        topic = table.changelog_topic
        raw_key, _ = topic.prepare_key(key, table.key_serializer)
        raw_value, _ = topic.prepare_value(value, table.value_serializer)
        return await self.send(topic.get_topic_name(), raw_key, raw_value, partition)

