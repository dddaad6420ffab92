"""Scenario `failover`: two Faust workers share a station-windows table of 1,000,000 window
entries (one per station, built by readings through evaluate, as in production); one
worker is killed (kill -9), and the figure is the time from the kill until a red crossing
on every partition has been dispatched, i.e. the survivor has taken over the dead worker's
partitions, recovered their table state and run evaluate and the lifecycle on them. Once
with ``WARNING_TABLE_STANDBY_REPLICAS=0`` (the survivor replays the changelog) and once
with 1 (it keeps a warm copy)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from warning.bench import gridworld
from warning.bench.chaos import dispatched
from warning.bench.ours import send, warm_producer
from warning.bench.residents import resident_pipeline
from warning.config import Settings
from warning.feeds import consumer_lag
from warning.partitions import partition_of
from warning.topics import changelog_topics

ENTRIES = int(os.environ.get("WARNING_BENCH_FAILOVER_ENTRIES", "1000000"))  # the survivor's changelog to replay
BELOW_BLUE = 2.0  # %LEL: a window entry, no alert


def _filled(settings: Settings) -> int:
    """Records in the station-windows changelog (what a recovering worker replays)."""
    topic = changelog_topics(settings.app_id)[0]
    reader = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.partitions)]
        return sum(reader.end_offsets(parts, timeout_ms=10_000).values())
    finally:
        reader.close()


def _wait(what: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"failover bench: {what} not reached in {timeout:.0f}s")
        time.sleep(0.2)


def _crossings(settings: Settings, tag: str) -> list[dict[str, Any]]:
    """A red reading on every partition, each in a grid of its own (one alert per partition)."""
    readings = []
    for p in range(settings.partitions):
        n = 0
        while partition_of(f"{tag}{p}-{n}", settings.partitions) != p:
            n += 1
        readings.append({**gridworld.crossing(p, tag), "station_id": f"{tag}{p}-{n}"})
    return readings


def one(base: Settings, run: int, standbys: int) -> dict[str, Any]:
    with resident_pipeline(base, f"failover{standbys}", run, base.partitions, 10, consumers=1, log_level="INFO",
                           table_standby_replicas=standbys) as (settings, procs):
        procs.start("worker-b", "worker")
        prod = warm_producer(settings)
        try:
            started = time.monotonic()
            centres = [gridworld.centre(g) for g in range(settings.partitions)]
            for start in range(0, ENTRIES, 50_000):
                now = datetime.now(UTC).isoformat()
                readings = [{"station_id": f"fill{run}-{i}", "kind": "gas_lel", "value": BELOW_BLUE, "unit": "%LEL",
                             "observed_at": now, "lat": centres[i % len(centres)][0],
                             "lon": centres[i % len(centres)][1]} for i in range(start, min(start + 50_000, ENTRIES))]
                send(settings, readings, prod=prod)
            _wait(f"{ENTRIES:,} readings evaluated", lambda: consumer_lag(settings)[settings.topic_prefix +
                                                                              "feeds.observations"] == 0, 600)
            _wait("the changelog holding every entry", lambda: _filled(settings) >= ENTRIES, 120)
            fill_s = time.monotonic() - started
            # A standby follows the changelog a little behind: give it the time a live pair has
            time.sleep(10)
            procs.kill("worker")
            killed = time.monotonic()
            readings = _crossings(settings, f"after{standbys}r{run}-")
            send(settings, readings, prod=prod)
            grids = {gridworld.grid_id(g) for g in range(settings.partitions)}
            _wait("every partition's crossing dispatched by the survivor",
                  lambda: all(dispatched(settings, g) for g in grids), 600)
            return {"failover_s": round(time.monotonic() - killed, 2), "fill_s": round(fill_s, 1),
                    "changelog_entries": _filled(settings)}
        finally:
            prod.close()


def scenario(base: Settings, run: int) -> dict[str, Any]:
    without, with_standby = one(base, run, 0), one(base, run, 1)
    return {"failover_no_standby_s": without["failover_s"], "failover_standby_s": with_standby["failover_s"],
            "changelog_entries": without["changelog_entries"], "fill_s": without["fill_s"]}
