"""The pipeline's topics: created as configured at startup, served, or refused with the reason;
and the worker's lag on its inputs, as /metrics reports it."""

from __future__ import annotations

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

from warning.config import Settings
from warning.feeds import TopicMismatch, consumer_lag, ensure_topics, topic_copies, wait_until_served
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
        for _ in range(3):
            producer.send(topics.fanout, value=b"{}", partition=1)  # and a city alert's work units
        producer.send(topics.alerts, value=b"{}", partition=0)  # not the worker's input
        producer.flush()
    finally:
        producer.close()
    assert consumer_lag(settings) == {topics.observations: 5, topics.cap: 0, topics.signals: 2, topics.control: 1,
                                      topics.fanout: 3}

    group = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=settings.app_id,
                          enable_auto_commit=False)
    try:
        group.assign([TopicPartition(topics.observations, 0)])
        group.commit({TopicPartition(topics.observations, 0): OffsetAndMetadata(3, "", -1)})
    finally:
        group.close()
    assert consumer_lag(settings) == {topics.observations: 2, topics.cap: 0, topics.signals: 2, topics.control: 1,
                                      topics.fanout: 3}


def _brokers(settings: Settings) -> int:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        return len(admin.describe_cluster()["brokers"])
    finally:
        admin.close()


def test_topics_are_created_with_the_replication_settings(settings: Settings) -> None:
    """Every pipeline topic carries WARNING_REPLICATION_FACTOR copies and WARNING_MIN_INSYNC_REPLICAS
    (1 / 1 on one broker; `make test-cluster` runs this with 3 / 2 on three)."""
    ensure_topics(settings)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        copies = topic_copies(admin, TopicNames(settings.topic_prefix).all())
    finally:
        admin.close()
    assert copies == dict.fromkeys(TopicNames(settings.topic_prefix).all(),
                                   (settings.replication_factor, settings.min_insync_replicas))


def test_more_copies_than_brokers_is_refused_naming_the_setting_and_the_broker_count(settings: Settings) -> None:
    brokers = _brokers(settings)
    wanting = settings.model_copy(update={"replication_factor": brokers + 1})
    with pytest.raises(TopicMismatch) as refused:
        ensure_topics(wanting)
    assert f"WARNING_REPLICATION_FACTOR is {brokers + 1} but the Kafka cluster" in str(refused.value)
    assert f"has {brokers} broker(s)" in str(refused.value)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        assert not [t for t in admin.list_topics() if t.startswith(settings.topic_prefix)]  # nothing half-made
    finally:
        admin.close()


def test_an_existing_topic_with_fewer_copies_or_a_lower_min_isr_is_refused(settings: Settings) -> None:
    """A topic made by hand (or by an older setting) would acknowledge writes on fewer copies than promised."""
    if _brokers(settings) < 3:
        pytest.skip("needs the 3-node cluster: `make test-cluster`")
    topics = TopicNames(settings.topic_prefix)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topics.alerts, settings.partitions, 1),
                             NewTopic(topics.acks, settings.partitions, 3, topic_configs={"min.insync.replicas": "1"})])
    finally:
        admin.close()
    production = settings.model_copy(update={"replication_factor": 3, "min_insync_replicas": 2})
    with pytest.raises(TopicMismatch) as refused:
        ensure_topics(production)
    assert f"topic {topics.alerts} has 1 replica(s) but WARNING_REPLICATION_FACTOR is 3" in str(refused.value)
    assert (f"topic {topics.acks} has min.insync.replicas=1 but WARNING_MIN_INSYNC_REPLICAS is 2: kafka-configs.sh "
            f"--alter --entity-type topics --entity-name {topics.acks} --add-config min.insync.replicas=2"
            in str(refused.value))
