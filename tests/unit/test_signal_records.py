"""Records on the internal signals topic: grouped by the partition that owns each alert's state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warning.models import Tier, TierSignal
from warning.partitions import partition_of
from warning.pipeline.signal_records import by_partition, parse

T0 = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


def signal(area: str, i: int, tier: Tier = Tier.red) -> TierSignal:
    return TierSignal(hazard="gas", area=area, station_id=f"s{i}", rule_id="gas_lel", tier=tier,
                      value=float(i), at=T0 + timedelta(seconds=i))


@settings(max_examples=50, deadline=None)
@given(areas=st.lists(st.sampled_from([f"4403050{n:02d}" for n in range(12)]), max_size=60),
       partitions=st.integers(1, 8))
def test_every_signal_goes_once_in_order_to_the_partition_its_alert_key_hashes_to(
        areas: list[str], partitions: int) -> None:
    sent = [signal(area, i) for i, area in enumerate(areas)]
    records = by_partition(sent, partitions)
    assert len({p for p, _, _ in records}) == len(records) <= partitions
    received: list[TierSignal] = []
    for partition, key, value in records:
        group = [TierSignal.model_validate(item) for item in parse(value).items]
        assert all(partition_of(s.alert_key, partitions) == partition for s in group)
        assert partition_of(key.decode(), partitions) == partition  # the key routes like its signals
        received += group
    assert sorted(received, key=lambda s: s.value or 0) == sent  # each once, unchanged
    for _, _, value in records:  # and in their order within a partition
        values = [item["value"] for item in parse(value).items]
        assert values == sorted(values)


def test_one_idle_signal_is_a_record_of_its_own() -> None:
    ((partition, key, value),) = by_partition([signal("440305001", 1)], 4)
    assert key == b"gas:440305001" and partition == partition_of("gas:440305001", 4)
    assert [TierSignal.model_validate(i) for i in parse(value).items] == [signal("440305001", 1)]


def test_a_record_is_a_tick_a_signal_or_an_array_of_them() -> None:
    assert parse(b'{"tick": 1780000000.5}').tick == 1780000000.5
    one = orjson.loads(signal("440305001", 1).model_dump_json())
    assert parse(orjson.dumps(one)).items == [one] and parse(orjson.dumps(one)).tick is None
    assert parse(orjson.dumps([one, {"junk": 1}])).items == [one, {"junk": 1}]  # validated one by one later
    for bad in (b"[]", b"42", b'"text"', b"{not json"):
        with pytest.raises(ValueError):
            parse(bad)
    with pytest.raises(TypeError):
        parse(b'{"tick": null}')


def test_a_record_read_once_weighs_its_signal_count_and_a_bad_one_carries_its_error() -> None:
    from warning.pipeline.signal_records import read

    ((_, _, value),) = by_partition([signal("440305001", i) for i in range(7)], 1)
    assert read(value).weight == 7 and not read(value).error
    assert read(b'{"tick": 1780000000.5}').weight == 1
    bad = read(b"{not json")
    assert (bad.weight, bad.items, bad.tick) == (1, [], None) and bad.error
    assert "non-empty array" in read(b"[]").error
