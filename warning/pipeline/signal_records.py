"""Records on the internal signals topic: a tick, one signal, or the signals of one message
that go to the same partition, as one JSON array.

A burst of crossings makes a signal per reading; as a record each, every signal paid
Faust's per-record cost twice (produce in evaluate, consume in lifecycle: together
~0.2 ms of a worker's ~1 ms per alert in the peer bench). Grouped by the partition their
alert keys hash to, a message of 500 readings makes at most ``partitions`` records, and
each signal still lands on the partition that owns its alert's lifecycle state. An idle
signal is still a record of its own, sent at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from warning.models import TierSignal
from warning.partitions import partition_of


def by_partition(signals: Iterable[TierSignal], partitions: int) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value) per partition: the signals whose alert keys hash there, in order."""
    groups: dict[int, list[TierSignal]] = defaultdict(list)
    for signal in signals:
        groups[partition_of(signal.alert_key, partitions)].append(signal)
    return [(p, group[0].alert_key.encode(), b"[" + b",".join(s.model_dump_json().encode() for s in group) + b"]")
            for p, group in groups.items()]


@dataclass
class SignalRecord:
    """What one record holds: a tick (its time), signal payloads still to validate, or the
    reason it is neither."""

    tick: float | None = None
    items: list[Any] = field(default_factory=list)
    error: str = ""

    @property
    def weight(self) -> int:
        """Signals it carries, for batch sizes (a tick or a bad record: one)."""
        return max(1, len(self.items))


def parse(raw: bytes) -> SignalRecord:
    """Raises ValueError (orjson's decode error is one) for a record that is not one of the three."""
    message = orjson.loads(raw)
    if isinstance(message, dict) and "tick" in message:
        return SignalRecord(tick=float(message["tick"]))
    if isinstance(message, dict):
        return SignalRecord(items=[message])
    if isinstance(message, list) and message:
        return SignalRecord(items=message)
    raise ValueError("a signals record is a tick, a signal or a non-empty array of signals")


def read(raw: bytes) -> SignalRecord:
    """:func:`parse`, with a bad record returned carrying its error (read once, on intake)."""
    try:
        return parse(raw)
    except (ValueError, TypeError) as exc:
        return SignalRecord(error=str(exc))
