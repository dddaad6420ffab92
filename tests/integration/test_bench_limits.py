"""The bench's host limits on the real stack: the latency floor's relays carry every message
through Kafka, a Redis stream and an HTTP POST; the webhook ceiling counts real posts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import wait_for
from warning import redis_client
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


def test_a_runs_namespace_is_dropped_whole_and_nothing_else(settings: Settings) -> None:
    """The bench leaves the machine as it found it: every key of the run (more than one
    deletion batch's worth), its topics and its workers' Faust directory go; another
    namespace's keys and directory stay."""

    from warning.bench.harness import drop_namespace
    from warning.feeds import ensure_topics
    from warning.topics import TopicNames

    run = settings.model_copy(update={"redis_prefix": f"{settings.redis_prefix}-run",
                                      "topic_prefix": f"{settings.topic_prefix}run.",
                                      "app_id": f"{settings.app_id}-run"})
    ensure_topics(run)
    for app_id in (run.app_id, settings.app_id):
        (settings.worker_data_dir / app_id / "v1" / "tables").mkdir(parents=True)
    client = redis_client.connect_sync(settings.redis_url)
    try:
        with client.pipeline(transaction=False) as pipe:
            for i in range(2500):
                pipe.set(f"{run.redis_prefix}:k{i}", i)
            pipe.set(f"{settings.redis_prefix}:kept", 1)
            pipe.execute()
        drop_namespace(run)
        assert list(client.scan_iter(match=f"{run.redis_prefix}:*", count=1000)) == []
        assert client.get(f"{settings.redis_prefix}:kept") == b"1"
        assert sorted(p.name for p in settings.worker_data_dir.iterdir()) == [settings.app_id]
    finally:
        client.close()
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:  # deletion is asynchronous in Kafka: the broker's metadata follows shortly
        wait_for(lambda: not set(TopicNames(run.topic_prefix).all()) & set(admin.list_topics()), 30,
                 "the run's topics deleted")
    finally:
        admin.close()


def test_the_aof_is_rewritten_once_a_runs_keys_are_gone_so_the_next_restart_loads_little(settings: Settings) -> None:
    """Unlinked keys stay in the append-only file until a rewrite: after the city fan-outs
    it was 2.7 GB over an empty database, and chaos's Redis restart outlasted a worker's
    wait for Redis. Over the threshold the file is rewritten and awaited; under it, not."""
    from warning.bench.harness import compact_aof

    if settings.redis_url.startswith(redis_client.CLUSTER_SCHEME):
        pytest.skip("per node on a Redis Cluster, and the bench compacts one Redis only (harness.py)")
    client = redis_client.connect_sync(settings.redis_url)
    try:
        if not client.info("persistence").get("aof_enabled"):
            pytest.fail("the local stack's Redis runs with appendonly yes; this one does not")
        with client.pipeline(transaction=False) as pipe:
            for i in range(2000):
                pipe.set(f"{settings.redis_prefix}:bulk{i}", "x" * 1000)
            pipe.execute()
        before = client.info("persistence")
        client.unlink(*[f"{settings.redis_prefix}:bulk{i}" for i in range(2000)])
        assert compact_aof(client, above=before["aof_current_size"] + 10**12) is False  # under the threshold
        assert client.info("persistence")["aof_rewrites"] == before["aof_rewrites"]
        assert compact_aof(client, above=0) is True
        after = client.info("persistence")
        assert after["aof_rewrites"] > before["aof_rewrites"]
        assert after["aof_rewrite_in_progress"] == 0
        assert after["aof_current_size"] < before["aof_current_size"]  # the 2 MB written and unlinked are gone
    finally:
        client.close()
