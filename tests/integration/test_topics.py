"""The pipeline's topics at startup: created as configured, served, or refused with the reason."""

from __future__ import annotations

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from warning.config import Settings
from warning.feeds import TopicMismatch, ensure_topics, wait_until_served
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
