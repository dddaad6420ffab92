"""The kept-hash partitioner maps keys exactly as Kafka's Java client and aiokafka do."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from warning.partitions import KeptHashPartitioner, key_hash, partition_of

# org.apache.kafka.common.utils.Utils.murmur2 of these keys (the Java client's own test
# vectors), as signed 32-bit ints; the partition is (hash & 0x7fffffff) % partitions.
JAVA = [(b"21", -973932308), (b"foobar", -790332482), (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971), (b"abc", 479470107)]


@pytest.mark.parametrize(("key", "java"), JAVA)
def test_the_hash_is_the_java_clients(key: bytes, java: int) -> None:
    assert key_hash(key) == java & 0x7FFFFFFF
    assert key_hash(key) == java & 0x7FFFFFFF  # the kept one, the second time
    assert partition_of(key.decode(), 12) == (java & 0x7FFFFFFF) % 12


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=64))
def test_a_producer_puts_every_key_where_aiokafka_would(key: bytes, partitions: int) -> None:
    every = list(range(partitions))
    assert KeptHashPartitioner()(key, every, every) == DefaultPartitioner()(key, every, every)


def test_a_record_without_a_key_goes_to_an_available_partition() -> None:
    assert KeptHashPartitioner()(None, [0, 1, 2, 3], [2]) == 2
    assert KeptHashPartitioner()(None, [0, 1, 2, 3], []) in {0, 1, 2, 3}
