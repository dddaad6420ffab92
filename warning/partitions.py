"""Kafka's default partitioner (murmur2, as the Java client computes it), each key's hash kept.

The same keys come back again and again — an alert's id for its signals, versions, states
and receipts, a station's id for its readings — and murmur2 is pure Python here (~5–10 µs a
key): in a burst of small alerts ~2 % of the worker's and of each consumer's samples. The
mapping is Kafka's own, so a record lands where any other client would put it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import lru_cache

from aiokafka.partitioner import murmur2

KEPT_HASHES = 65_536  # a burst's alerts and a city's stations; an entry is ~150 bytes


@lru_cache(maxsize=KEPT_HASHES)
def key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key``."""
    return key_hash(key.encode()) % partitions


class KeptHashPartitioner:
    """aiokafka's ``DefaultPartitioner`` (a producer's ``partitioner``), with hashes kept."""

    def __call__(self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]) -> int:
        if key is None:
            return random.choice(available or all_partitions)
        return all_partitions[key_hash(bytes(key)) % len(all_partitions)]
