"""Records handed straight to a Faust Kafka producer: versions, lifecycle states and
evaluate's grouped signals on the app's producer, station windows on one of their own.

``Topic.send`` and ``Table.send_changelog`` wrap every record in Faust's promise
machinery (a FutureMessage, sensors, the stampede-guarded producer lookup, and for
changelogs the producer buffer, whose task hands records to aiokafka one at a time)
before aiokafka sees it. Here the bytes go to the same producer (idempotent, acks=all)
at once, serialized by the table's own codecs, so what lands in the topic is byte for
byte what Faust would have written. In the peer burst the lifecycle's two records an
alert sent this way took the worker from ~1,150 to ~780 µs an alert and Kafka from ~250
to ~137 µs (four alternating pairs each way; README, *Performance*).

Station windows go the same way, but on a second producer (``own_connection``): a flush
hands over hundreds of windows at once, and on the app's producer they filled whole
requests on its one connection to each broker, so a threshold crossing's signal and
version waited behind them (reach bench: 7 of 24 crossings 0.9-1.8 s late). On their own
connection they queue only behind each other (writeback.py acknowledges the readings
they cover once Kafka has them).

What Faust's path did besides: its consumer flushes the app's producer before every offset
commit (so a batch's records are in Kafka before its signals are committed, as before);
the changelog callback only records offsets for persistent stores (RocksDB) and for
transactions, neither of which the worker uses (``store="memory://"``, at-least-once).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import faust
import structlog
from faust.types import ProducerT

Sent = Awaitable[Any]  # aiokafka's RecordMetadata, once Kafka has the record


class DirectProducer:
    """``send`` a raw record, ``changelog`` a table write: each returns the acknowledgement
    to await, as ``Topic.send`` does."""

    def __init__(self, producer: ProducerT) -> None:
        self.producer = producer

    async def send(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> Sent:
        sent: Sent = await self.producer.send(topic, key, value, partition, None, None)
        return sent

    async def changelog(self, table: Any, partition: int, key: Any, value: Any) -> Sent:
        """The record ``table.send_changelog(partition, key, value)`` would write."""
        topic = table.changelog_topic
        raw_key, _ = topic.prepare_key(key, table.key_serializer)
        raw_value, _ = topic.prepare_value(value, table.value_serializer)
        return await self.send(topic.get_topic_name(), raw_key, raw_value, partition)


def own_connection(app: faust.App) -> ProducerT:
    """A second producer of the app's settings (brokers, credentials, linger, batch size),
    idempotent, with connections of its own; started before the agents and stopped after
    them, with the app."""
    producer = app.transport.create_producer(loop=app.loop, beacon=app.beacon)
    idempotent(producer)
    app.add_dependency(producer)
    return producer


def idempotent(producer: ProducerT) -> None:
    """Faust's producer idempotent, as every other producer here.

    faust-streaming asks aiokafka for idempotence only under ``exactly_once``; otherwise a
    batch retried after a broker failover (its acknowledgement lost) is written twice. The
    stages downstream would tolerate the copy, but a changelog or alert stream should not
    carry it."""
    if hasattr(producer, "_settings_extra"):
        producer._settings_extra = lambda: {"acks": "all", "enable_idempotence": True}
    else:  # a faust upgrade renamed it: still acks=all, only not deduplicated by the broker
        structlog.get_logger().warning("producer_idempotence_not_set", reason="faust producer settings hook not found")
