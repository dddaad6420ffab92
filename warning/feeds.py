"""Kafka for the pipeline: its topics checked at startup, the worker's lag on them, and feeds
produced as the ingest path does it (observations batched per partition)."""

from __future__ import annotations

import contextlib
import re
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import (
    CoordinatorLoadInProgressError,
    CoordinatorNotAvailableError,
    KafkaTimeoutError,
    NotCoordinatorError,
    TopicAlreadyExistsError,
)

from warning.config import Settings
from warning.partitions import partition_of
from warning.topics import TopicNames, changelog_topics, replication_problems


class TopicMismatch(RuntimeError):
    """The pipeline's topics are not as configured: another partition count than the
    setting, fewer copies than the replication settings, or partitions that no leader
    serves within the startup deadline."""


def ensure_topics(settings: Settings) -> list[str]:
    """Create the pipeline's topics with the configured partitions and copies; returns the new ones.

    Faust tables are co-partitioned with their source topics, so an existing topic with
    another partition count is refused here, at startup, rather than failing mid-stream;
    so is one (Faust's changelogs included) with fewer replicas or a lower min ISR than
    the settings: its writes would be acknowledged on fewer copies than promised.
    """
    names = TopicNames(settings.topic_prefix).all()
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="warning-admin",
                             bootstrap_timeout_ms=int(settings.kafka_connect_timeout_s * 1000))
    try:
        existing = set(admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            _check_brokers(admin, settings)
            configs = {"min.insync.replicas": str(settings.min_insync_replicas)}
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                admin.create_topics([NewTopic(n, settings.partitions, settings.replication_factor,
                                              topic_configs=configs) for n in missing])
        deadline = time.monotonic() + 30
        while True:  # new topics answer only once every partition has a leader
            described = admin.describe_topics(names)
            if all(t.get("partitions") and all(p.get("leader_id", -1) >= 0 for p in t["partitions"])
                   for t in described):
                break
            if time.monotonic() > deadline:
                raise TopicMismatch(f"topics {missing} have partitions without a leader after 30s")
            time.sleep(0.1)
        for topic in described:
            count = len(topic.get("partitions", []))
            if count != settings.partitions:
                raise TopicMismatch(
                    f"topic {topic.get('name')} has {count} partitions but WARNING_PARTITIONS is "
                    f"{settings.partitions}; use a matching setting or a new WARNING_TOPIC_PREFIX")
        # Only what this call did not create: a topic just made has the settings, and a broker
        # that has not learnt of it yet describes it without its config.
        found = [n for n in names if n in existing] + [n for n in changelog_topics(settings.app_id) if n in existing]
        if problems := replication_problems(topic_copies(admin, found), settings.replication_factor,
                                            settings.min_insync_replicas):
            raise TopicMismatch("; ".join(problems))
        wait_until_served(settings, names, timeout_s=max(deadline - time.monotonic(), 1.0))
        return missing
    finally:
        admin.close()


def _check_brokers(admin: KafkaAdminClient, settings: Settings) -> None:
    brokers = len(admin.describe_cluster()["brokers"])
    if settings.replication_factor > brokers:
        raise TopicMismatch(
            f"WARNING_REPLICATION_FACTOR is {settings.replication_factor} but the Kafka cluster at "
            f"WARNING_KAFKA_BOOTSTRAP ({settings.kafka_bootstrap}) has {brokers} broker(s): "
            "lower the setting or start more brokers")


def topic_copies(admin: KafkaAdminClient, names: list[str]) -> dict[str, tuple[int, int]]:
    """topic -> (fewest replicas of any partition, its min.insync.replicas, default or not)."""
    if not names:
        return {}
    replicas = {t["name"]: min(len(p["replica_nodes"]) for p in t["partitions"])
                for t in admin.describe_topics(names) if t.get("partitions")}
    resources = [ConfigResource(ConfigResourceType.TOPIC, n, {"min.insync.replicas": None}) for n in replicas]
    described = admin.describe_configs(resources, config_filter="all")["topic"]
    return {n: (r, int(described[n]["min.insync.replicas"]["value"])) for n, r in replicas.items()}


def wait_until_served(settings: Settings, names: Iterable[str], timeout_s: float) -> dict[TopicPartition, int]:
    """Wait until every partition's leader answers for it; returns the end offsets.

    On a broker that has just started, metadata names a partition's leader before that
    broker serves it: the first produces were refused with NotLeaderForPartitionError and
    retried, a screen of warnings on every `make run`. A ListOffsets request is answered
    only by the serving leader, and the consumer retries it quietly."""
    partitions = [TopicPartition(n, p) for n in names for p in range(settings.partitions)]
    consumer = _offsets_reader(settings, "warning-admin")
    try:
        return dict(consumer.end_offsets(partitions, timeout_ms=int(timeout_s * 1000)))
    except KafkaTimeoutError as exc:
        raise TopicMismatch(f"topic partitions not served by their leader after {timeout_s:.0f}s: {exc}") from exc
    finally:
        consumer.close()


def consumer_lag(settings: Settings) -> dict[str, int]:
    """Messages the Faust worker has not processed yet, per input topic (blocking; for /metrics
    and the chaos bench's report).

    Counted from the worker group's committed offsets. A partition the group has never
    committed counts from its beginning, where the worker starts (``auto_offset_reset``
    earliest): a worker that is up but takes nothing shows as lag that grows, not as none."""
    topics = TopicNames(settings.topic_prefix)
    partitions = [TopicPartition(topic, p) for topic in (topics.observations, topics.cap, topics.signals,
                                                         topics.control, topics.fanout)
                  for p in range(settings.partitions)]
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="warning-metrics",
                             bootstrap_timeout_ms=int(settings.kafka_connect_timeout_s * 1000))
    consumer = _offsets_reader(settings, "warning-metrics")
    try:
        offsets = _group_offsets(admin, settings.app_id)
        committed = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
        ends = consumer.end_offsets(partitions, timeout_ms=5000)
        never = [tp for tp in partitions if tp not in committed]
        starts = consumer.beginning_offsets(never, timeout_ms=5000) if never else {}
        lag: dict[str, int] = {}
        for tp in partitions:
            done = committed[tp] if tp in committed else starts[tp]
            lag[tp.topic] = lag.get(tp.topic, 0) + max(ends[tp] - done, 0)
        return lag
    finally:
        consumer.close()
        admin.close()


def _group_offsets(admin: KafkaAdminClient, group: str, timeout_s: float = 15.0) -> dict[TopicPartition, Any]:
    """The group's committed offsets. A coordinator that is loading its partition of
    __consumer_offsets (a fresh broker's first group, or one whose broker just failed over)
    answers with a retriable error for a few seconds: asked again, not reported as a failure."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return dict(admin.list_group_offsets(group).get(group, {}))
        except (CoordinatorLoadInProgressError, CoordinatorNotAvailableError, NotCoordinatorError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _offsets_reader(settings: Settings, client_id: str) -> KafkaConsumer:
    """A group-less consumer that only asks for offsets: it commits nothing and creates no topic."""
    return KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, client_id=client_id,
                         enable_auto_commit=False, allow_auto_create_topics=False)


def producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                         max_block_ms=int(settings.kafka_connect_timeout_s * 1000),
                         compression_type=None, max_request_size=8 * 1024 * 1024)


def batch_by_partition(records: Iterable[dict[str, Any]], partitions: int, size: int) -> list[tuple[int, str, bytes]]:
    """Group readings into JSON-array messages whose stations share a partition."""
    groups: dict[int, list[dict[str, Any]]] = defaultdict(list)
    out: list[tuple[int, str, bytes]] = []
    for record in records:
        station = str(record.get("station_id", ""))
        p = partition_of(station, partitions)
        groups[p].append(record)
        if len(groups[p]) >= size:
            out.append((p, station, orjson.dumps(groups.pop(p))))
    for p, group in groups.items():
        out.append((p, str(group[0].get("station_id", "")), orjson.dumps(group)))
    return out


def push_observations(settings: Settings, lines: Iterable[bytes], batch: int = 500) -> tuple[int, int]:
    """Send JSONL observations; returns (readings sent, lines not JSON objects sent as-is).

    Lines that are not JSON objects are still sent, one per message, so the pipeline
    refuses them to warning.rejected with a reason rather than this tool hiding them.
    """
    topic = TopicNames(settings.topic_prefix).observations
    good: list[dict[str, Any]] = []
    odd = 0
    prod = producer(settings)
    try:
        for line in lines:
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                record = None
            if isinstance(record, dict):
                good.append(record)
            else:
                odd += 1
                prod.send(topic, key=b"unparsed", value=line.strip())
        for partition, key, value in batch_by_partition(good, settings.partitions, batch):
            prod.send(topic, key=key.encode(), value=value, partition=partition)
        prod.flush()
    finally:
        prod.close()
    return len(good), odd


def push_cap(settings: Settings, data: bytes) -> str:
    """Send one CAP message to feeds.cap keyed by its identifier (validation happens downstream)."""
    match = re.search(rb"<(?:\w+:)?identifier>\s*([^<\s]+)\s*</", data)
    key = match.group(1) if match else b"unparsed"
    prod = producer(settings)
    try:
        prod.send(TopicNames(settings.topic_prefix).cap, key=key, value=data)
        prod.flush()
    finally:
        prod.close()
    return key.decode("utf-8", errors="replace")


def looks_like_xml(data: bytes) -> bool:
    return data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def read_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()
