"""A batch's marks name each delivery's receipt from the channel and shard they already
have; everyone else (provider callbacks, status reads) reads them back out of the id. The
two must name the same hash, or a callback would find no receipt."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from warning.keys import Keys
from warning.lifecycle import new_alert_id
from warning.models import delivery_id

CHANNELS = st.sampled_from(["sms", "push", "grid", "cell_broadcast", "smpp", "Odd-Channel"])
PARTS = st.text(max_size=20)  # a hazard or area from a feed: anything, dots and ".v1.sms." included


def _same(keys: Keys, alert_id: str, version: int, channel: str, recipient: str) -> None:
    made = delivery_id(alert_id, version, channel, recipient)
    assert keys.delivery_in(channel, keys.shard(recipient), alert_id, recipient, made) == keys.delivery(made)


@given(PARTS, PARTS, st.integers(0, 2**31), st.integers(1, 99), CHANNELS, st.text(min_size=1, max_size=40),
       st.integers(1, 16))
@example("gale.v1.sms.x", "440305", 0, 1, "push", "r1", 4)  # the id reads back as sms unless told otherwise
@example("gale", "440305", 0, 1, "push", "r1\n.v2.sms.r2", 4)
def test_the_marks_name_the_receipt_a_callback_reads(hazard: str, area: str, at: int, version: int, channel: str,
                                                     recipient: str, shards: int) -> None:
    keys = Keys(prefix="p", shards=shards)
    alert_id = new_alert_id(hazard, area, at)
    _same(keys, alert_id, version, channel, recipient)
    _same(keys, "drill-" + alert_id, version, channel, recipient)


@pytest.mark.parametrize("recipient", ["grid:440305001", "res-000123", "+8613800000000"])
def test_an_ordinary_id_takes_the_short_way(recipient: str) -> None:
    keys = Keys(prefix="p", shards=6)
    made = delivery_id("gale-440305-20261208T010000Z", 1, "push", recipient)
    assert keys.delivery_in("push", keys.shard(recipient), "gale-440305-20261208T010000Z", recipient, made) \
        == f"p:delivery:{{push:{keys.shard(recipient)}}}:{made}"
