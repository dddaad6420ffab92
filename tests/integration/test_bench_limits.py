"""The bench's host limits on the real stack: the latency floor's relays carry every message
through Kafka, a Redis stream and an HTTP POST; the webhook ceiling counts real posts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from warning.bench import limits
from warning.bench.gridworld import WebhookSink
from warning.bench.webhook_sink import read
from warning.config import Settings
from warning.feeds import producer

pytestmark = pytest.mark.integration


def test_the_floor_relays_pass_every_message_through_kafka_redis_and_http(settings: Settings, tmp_path: Path) -> None:
    prod = producer(settings)
    try:
        with WebhookSink(tmp_path / "floor.tsv") as sink:
            figures = limits.latency_floor(settings, sink, prod, samples=20, rate=50.0)
            arrived = read(sink.out)
    finally:
        prod.close()
    assert {k for k in arrived if not k.startswith("floor-warm-")} == {f"floor-{i}" for i in range(20)}
    assert 0 < figures["floor_p50_ms"] <= figures["floor_p99_ms"] < 5000


def test_the_webhook_ceiling_is_the_rate_of_posts_that_arrived(tmp_path: Path) -> None:
    with WebhookSink(tmp_path / "ceiling.tsv") as sink:
        per_s = limits.webhook_ceiling(sink, 300)
        lines = sink.out.read_text().splitlines()
    assert per_s > 0
    assert Counter(line.partition("\t")[0] for line in lines) == {"ceiling": 300}  # every post, once
