"""The pipeline's topics: created as configured at startup, served, or refused with the reason;
and the worker's lag on its inputs, as /metrics reports it."""

from __future__ import annotations

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

from warning.config import Settings
from warning.feeds import TopicMismatch, consumer_lag, ensure_topics, wait_until_served
from warning.topics import TopicNames

pytestmark = pytest.mark.integration


def test_topics_are_created_once_with_the_configured_partitions_and_every_partition_takes_a_write(
        settings: Settings) -> None:
    names = TopicNames(settings.topic_prefix).all()
    assert sorted(ensure_topics(settings)) == sorted(names)
    assert ensure_topics(settings) == []  # a second process finds them
    # No retries: a partition whose leader did not serve it yet would fail this write.
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", retries=0)
    try:
        sent = [producer.send(name, value=b"{}", partition=p) for name in names for p in range(settings.partitions)]
        offsets = {(r.topic, r.partition) for r in (f.get(timeout=10) for f in sent)}
    finally:
        producer.close()
    assert offsets == {(name, p) for name in names for p in range(settings.partitions)}


def test_an_existing_topic_with_another_partition_count_is_refused_naming_topic_and_setting(
        settings: Settings) -> None:
    observations = TopicNames(settings.topic_prefix).observations
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(observations, settings.partitions + 1, 1)])
    finally:
        admin.close()
    with pytest.raises(TopicMismatch) as refused:
        ensure_topics(settings)
    assert f"topic {observations} has {settings.partitions + 1} partitions" in str(refused.value)
    assert "WARNING_PARTITIONS" in str(refused.value)


def test_partitions_no_leader_serves_are_refused_after_the_deadline(settings: Settings) -> None:
    ensure_topics(settings)
    names = TopicNames(settings.topic_prefix).all()
    assert set(wait_until_served(settings, names, timeout_s=10).values()) == {0}
    with pytest.raises(TopicMismatch, match="not served by their leader after 1s"):
        wait_until_served(settings, [f"{settings.topic_prefix}never-created"], timeout_s=1)


def test_pipeline_lag_counts_what_the_worker_has_not_committed_and_from_the_start_where_it_never_did(
        settings: Settings) -> None:
    """A worker that is up but takes nothing (the chaos bench's stalled restart) must show as lag."""
    ensure_topics(settings)
    topics = TopicNames(settings.topic_prefix)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    try:
        for _ in range(5):
            producer.send(topics.observations, value=b"{}", partition=0)
        for _ in range(2):
            producer.send(topics.signals, value=b"[]", partition=1)
        producer.send(topics.control, value=b"{}", partition=0)  # an officer's command waits too
        producer.send(topics.alerts, value=b"{}", partition=0)  # not the worker's input
        producer.flush()
    finally:
        producer.close()
    assert consumer_lag(settings) == {topics.observations: 5, topics.cap: 0, topics.signals: 2, topics.control: 1}

    group = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=settings.app_id,
                          enable_auto_commit=False)
    try:
        group.assign([TopicPartition(topics.observations, 0)])
        group.commit({TopicPartition(topics.observations, 0): OffsetAndMetadata(3, "", -1)})
    finally:
        group.close()
    assert consumer_lag(settings) == {topics.observations: 2, topics.cap: 0, topics.signals: 2, topics.control: 1}
