"""Fixtures for tests that run the real pipeline processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer

from tests.conftest import seed, settings_env, wait_for
from warning.config import Settings
from warning.runner import Processes


@pytest.fixture
def pipeline(settings: Settings, tmp_path: Path) -> Iterator[Processes]:
    seed(settings)
    with Processes(tmp_path / "logs", env=settings_env(settings)) as procs:
        procs.start_pipeline(settings)
        yield procs


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "warning", *args], capture_output=True, text=True,
                          env={**os.environ, **settings_env(settings)}, timeout=60)


def logs(tmp_path: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted((tmp_path / "logs").glob("*.log")))


def consume_all(settings: Settings, topic: str, want: int, timeout: float = 30) -> list[dict[str, Any]]:
    consumer = KafkaConsumer(settings.topic_prefix + topic, bootstrap_servers=settings.kafka_bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=500, group_id=None)
    got: list[dict[str, Any]] = []

    def poll() -> bool:
        for batch in consumer.poll(timeout_ms=200).values():
            got.extend(orjson.loads(m.value) for m in batch)
        return len(got) >= want

    try:
        wait_for(poll, timeout, f"{want} records on {topic}", lambda: got)
    finally:
        consumer.close()
    return got




def read_topic(settings: Settings, topic: str) -> list[dict[str, Any]]:
    """Everything on a topic right now (from the start, until a poll comes back empty)."""
    consumer = KafkaConsumer(settings.topic_prefix + topic, bootstrap_servers=settings.kafka_bootstrap,
                             auto_offset_reset="earliest", group_id=None)
    got: list[dict[str, Any]] = []
    try:
        while batches := consumer.poll(timeout_ms=500):
            for batch in batches.values():
                got.extend(orjson.loads(m.value) for m in batch)
    finally:
        consumer.close()
    return got
