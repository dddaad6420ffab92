"""Scenario runs: the stack, a fresh namespace per run, repeats, medians, machine facts, results.

Every figure is the median of ``repeats`` runs with min and max beside it (this machine
is shared and noisy). The stack is started if nothing answers and stopped again after.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import redis
from kafka import KafkaAdminClient

from warning import heap, redis_client
from warning.config import Settings
from warning.control.policy import auto_policy_file

ROOT = Path(__file__).resolve().parents[2]
STACK = [sys.executable, str(ROOT / "deploy" / "local" / "stack.py")]
Scenario = Callable[[Settings, int], dict[str, Any]]
# The local Kafka cluster's nodes (`make test-cluster`, `warning bench --cluster`): ports of their own
CLUSTER_BOOTSTRAP = "127.0.0.1:39192,127.0.0.1:39194,127.0.0.1:39196"
RECORDED_SETTINGS = {"partitions", "consumer_batch", "enqueue_batch", "dispatch_batch", "visibility_timeout_s",
                     "worker_producer_linger_ms", "rate_limits", "evaluate_flush_events", "evaluate_flush_s",
                     "worker_session_timeout_s", "retry_max_attempts", "kafka_bootstrap", "replication_factor",
                     "min_insync_replicas", "table_standby_replicas"}


def stack(*args: str, env: dict[str, str] | None = None) -> str:
    """A deploy/local/stack.py command (a fault, a start); its last line of output, or why it failed."""
    done = subprocess.run([*STACK, *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise RuntimeError(f"stack.py {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


@contextlib.contextmanager
def local_stack() -> Iterator[None]:
    """Use the stack that answers, or start it and stop afterwards what was not running
    before (leave the machine as found: a Redis still loading its AOF keeps running)."""
    if subprocess.run([*STACK, "ready"], capture_output=True).returncode == 0:
        yield
        return
    running = subprocess.run([*STACK, "running"], capture_output=True, text=True, check=True).stdout.split()
    subprocess.run([*STACK, "up"], check=True, stdout=sys.stderr)
    try:
        yield
    finally:
        if started := [s for s in ("kafka", "redis") if s not in running]:
            subprocess.run([*STACK, "down", *started], stdout=sys.stderr)


def namespace(base: Settings, scenario: str, run: int, **overrides: Any) -> Settings:
    tag = f"bench-{scenario}-{datetime.now(UTC).strftime('%H%M%S')}-{run}"
    return base.model_copy(update={"topic_prefix": f"{tag}.", "app_id": tag, "redis_prefix": tag,
                                   "providers": "sink", "release_policy_file": auto_policy_file(), **overrides})


def drop_namespace(settings: Settings) -> None:
    """Delete a run's topics, consumer group, Redis keys and its workers' Faust directory."""

    shutil.rmtree(settings.worker_data_dir / settings.app_id, ignore_errors=True)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="warning-bench")
    try:
        mine = [t for t in admin.list_topics() if t.startswith((settings.topic_prefix, f"{settings.app_id}-"))]
        if mine:
            admin.delete_topics(mine)
        with contextlib.suppress(Exception):  # the group may never have formed
            admin.delete_groups([settings.app_id])
    finally:
        admin.close()
    client = redis_client.connect_sync(settings.redis_url)
    doomed: list[bytes] = []
    for key in client.scan_iter(match=f"{settings.redis_prefix}:*", count=1000):
        doomed.append(key)
        if len(doomed) >= 1000:  # a round trip per key was ~50 s of a fan-out run's 400,000 deliveries
            client.unlink(*doomed)
            doomed.clear()
    if doomed:
        client.unlink(*doomed)
    try:
        # A Redis Cluster's nodes are never restarted from their AOFs by a scenario (chaos
        # promotes a replica), and INFO / BGREWRITEAOF there are per node: one Redis only.
        if not settings.redis_url.startswith(redis_client.CLUSTER_SCHEME):
            compact_aof(client)
    finally:
        client.close()


AOF_COMPACT_ABOVE = 64 * 1024 * 1024


def compact_aof(client: redis.Redis, above: int = AOF_COMPACT_ABOVE, timeout_s: float = 600.0) -> bool:
    """Rewrite Redis's append-only file once a run's keys are gone, if it is over ``above``
    bytes, and wait for the rewrite. Unlinked keys stay in the AOF until a rewrite, and
    Redis rewrites on its own only once the file doubles its base: after three 5,000,000
    fan-outs the AOF was 2.7 GB over an empty database, and the next scenario's Redis
    restart (chaos) spent over 30 s loading it, longer than a worker waits for Redis at
    startup. True if it rewrote."""
    info = client.info("persistence")
    if not info.get("aof_enabled") or int(info.get("aof_current_size", 0)) <= above:
        return False
    with contextlib.suppress(redis.ResponseError):  # one already under way is as good
        client.bgrewriteaof()
    deadline = time.monotonic() + timeout_s
    while (info := client.info("persistence"))["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"Redis's AOF rewrite did not finish in {timeout_s:.0f} s")
        time.sleep(0.2)
    if info.get("aof_last_bgrewrite_status") != "ok":
        raise RuntimeError(f"Redis's AOF rewrite failed ({info.get('aof_last_bgrewrite_status')}): see its log")
    return True


def machine() -> dict[str, Any]:
    memory_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")), 0)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cores": os.cpu_count(), "memory_gib": round(memory_kb / 1024 / 1024, 1), "cpu": cpu,
            "python": platform.python_version(), "platform": platform.platform()}


def versions() -> dict[str, str]:
    out = {}
    for package in ("faust-streaming", "aiokafka", "kafka-python", "redis", "pydantic", "orjson"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[package] = metadata.version(package)
    libs = ROOT / ".run" / "kafka" / "libs"
    kafka = sorted(p.name for p in libs.glob("kafka_2.13-*.jar")) if libs.exists() else []
    if kafka:
        out["kafka"] = kafka[0].removeprefix("kafka_2.13-").removesuffix(".jar")
    with contextlib.suppress(OSError, IndexError):
        out["redis-server"] = subprocess.run(["redis-server", "--version"], capture_output=True,
                                             text=True).stdout.split()[2].removeprefix("v=")
    return out


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every numeric figure across runs, with _min and _max beside it.

    A figure some runs could not give (None: the restarted worker that never dispatched)
    is the median of the runs that gave it, with ``_missing`` counting the others. Anything
    else (a profile, a stall's diagnostics) is the last run's that has one."""
    out: dict[str, Any] = {}
    for key in runs[0]:
        given = [r.get(key) for r in runs if r.get(key) is not None]
        values = [v for v in given if isinstance(v, int | float) and not isinstance(v, bool)]
        if values and len(values) == len(given):
            out[key] = round(statistics.median(values), 3)
            out[f"{key}_min"], out[f"{key}_max"] = round(min(values), 3), round(max(values), 3)
            if len(values) < len(runs):
                out[f"{key}_missing"] = len(runs) - len(values)
        else:
            out[key] = given[-1] if given else None
    return out


def run(name: str, scenario: Scenario, base: Settings, repeats: int) -> dict[str, Any]:
    started = time.monotonic()
    runs = []
    for i in range(repeats):
        heap.settle()  # the producing side's clock must not wait out our own collector either
        runs.append(scenario(base, i))
    return {"scenario": name, **summarise(runs), "repeats": repeats, "runs": runs,
            "seconds": round(time.monotonic() - started, 1), "machine": machine(), "versions": versions(),
            "settings": base.model_dump(mode="json", include=RECORDED_SETTINGS),
            "at": datetime.now(UTC).isoformat(timespec="seconds")}
