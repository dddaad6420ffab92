"""Our side of the webhook scenarios: the real pipeline (Faust worker + grid consumers) over
a lattice of grids, each with one webhook endpoint at the shared sink; alerts to grid
endpoints only, so each threshold crossing is exactly one webhook."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from kafka import KafkaProducer
from pydantic import SecretStr

from warning import redis_client
from warning.bench import gridworld
from warning.bench.gridworld import BENCH_DIR, WebhookSink
from warning.bench.harness import drop_namespace, namespace
from warning.bench.webhook_sink import Received
from warning.config import Settings
from warning.feeds import batch_by_partition, ensure_topics, producer
from warning.keys import Keys
from warning.runner import Processes, env_for
from warning.targeting.importer import store_grids

BENCH_SECRET = "bench-grid-secret"


@contextlib.contextmanager
def grid_pipeline(base: Settings, scenario: str, run: int, n_grids: int, sink: WebhookSink,
                  consumers: int = 1) -> Iterator[tuple[Settings, Processes]]:
    directory = gridworld.directory("grid-endpoints", gridworld.GRID_ENDPOINTS_ONLY)
    settings = namespace(base, scenario, run, directory_file=directory, providers="auto",
                         grid_webhook_secret=SecretStr(BENCH_SECRET))
    ensure_topics(settings)
    client = redis_client.connect_sync(settings.redis_url)
    try:
        store_grids(client, Keys(settings.redis_prefix), gridworld.grids(n_grids + 1, f"{sink.url}/grid"), "bench")
    finally:
        client.close()
    env = {**env_for(settings), "WARNING_DIRECTORY_FILE": str(directory), "WARNING_GRID_WEBHOOK_SECRET": BENCH_SECRET,
           "WARNING_RATE_LIMITS": '{"grid": 10000000}', "WARNING_LOG_LEVEL": "WARNING"}
    try:
        with Processes(BENCH_DIR / "logs" / f"{scenario}{run}", env=env) as procs:
            procs.start("worker", "worker")
            for i in range(consumers):
                procs.start(f"grid-{i}", "consumer", "grid")
            warm = gridworld.grid_id(n_grids)  # the spare grid: the worker is up and assigned
            send(settings, [gridworld.crossing(n_grids, f"warm{run}")])
            wait_for_keys(sink, {warm}, timeout=120, procs=procs)
            yield settings, procs
    finally:
        drop_namespace(settings)


def send(settings: Settings, readings: list[dict[str, Any]], batch: int = 500,
         prod: KafkaProducer | None = None) -> dict[str, float]:
    """Produce readings batched per partition as the ingest path does; the send time per grid key.
    Pass a warm producer when timing: a new one spends ~100 ms fetching metadata first."""
    own = prod is None
    prod = prod or producer(settings)
    topic = settings.topic_prefix + "feeds.observations"
    sent: dict[str, float] = {}
    by_station = {r["station_id"]: r for r in readings}
    try:
        futures = []
        for partition, _, value in batch_by_partition(readings, settings.partitions, batch):
            at = time.time()
            futures.append(prod.send(topic, value=value, partition=partition))
            for station in _stations(value):
                sent[grid_key(by_station[station])] = at
        prod.flush()
        for future in futures:  # flush() returns even when a send failed: a lost reading must not pass
            future.get(timeout=30)
    finally:
        if own:
            prod.close()
    return sent


def warm_producer(settings: Settings) -> KafkaProducer:
    """A producer that already has the observations topic's metadata."""
    prod = producer(settings)
    prod.partitions_for(settings.topic_prefix + "feeds.observations")
    return prod


def _stations(value: bytes) -> list[str]:
    import orjson

    return [r["station_id"] for r in orjson.loads(value)]


def grid_key(reading: dict[str, Any]) -> str:
    return gridworld.grid_id(int(str(reading["station_id"]).rsplit("-", 1)[1]))


def wait_for_keys(sink: WebhookSink, keys: set[str], timeout: float,
                  procs: Processes | None = None) -> dict[str, float]:
    deadline, received = time.monotonic() + timeout, Received(sink.out)
    while True:
        got = received()
        if all(k in got for k in keys):
            return dict(got)
        if procs is not None and (dead := procs.dead()):
            raise RuntimeError(f"bench process died: {dead} (logs in {procs.log_dir})")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(keys - set(got))} of {len(keys)} webhooks missing after {timeout:.0f}s")
        time.sleep(0.1)


