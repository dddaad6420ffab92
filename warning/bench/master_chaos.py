"""The chaos scenario's Redis master kills (`warning bench chaos --cluster`): one red alert to
100,000 residents through three push consumers; at 40 % delivered a master is killed
(kill -9) and its replica takes over. Counted at the sinks: deliveries lost, sent twice,
and the longest stall in arrivals after the kill.

- On the local Redis Cluster (deploy/local/redis_cluster.py: 3 masters + 3 replicas), the
  queues in 6 shard lanes per channel so every master holds some: the master serving slot
  0 dies, the cluster promotes its replica after the node timeout. These are the
  ``master_kill_*`` figures, with what WAIT costs there (the same drain without a kill,
  with and without ``WARNING_REDIS_WAIT_REPLICAS=1``).
- With Sentinel (deploy/local/sentinel.py: a master, its replica, a Sentinel), the single-
  shard deployment's failover: ``sentinel_kill_*``.

Replication is asynchronous: what a master acknowledged in its last moments may not have
reached its replica. WAIT narrows that window; the figures say what it cost here."""

from __future__ import annotations

import itertools
import time
from typing import Any

from warning.bench import gridworld
from warning.bench.harness import stack
from warning.bench.ours import send
from warning.bench.residents import SinkLines, arrivals, resident_pipeline
from warning.config import Settings

CLUSTER_URL = "redis+cluster://127.0.0.1:21001,127.0.0.1:21002,127.0.0.1:21003"  # nodes 21001-21006
SENTINEL_URL = "redis+sentinel://127.0.0.1:36391/warning/0"  # master 36389, replica 36390
CLUSTER_SHARD_LANES = 6
RECIPIENTS = 100_000
KILL_AT = 0.4


def _stack(url: str, *args: str) -> str:
    return stack(*args, env={"WARNING_REDIS_URL": url})


def scenario(base: Settings, run: int) -> dict[str, Any]:
    on_cluster = base.model_copy(update={"redis_url": CLUSTER_URL, "shard_lanes": CLUSTER_SHARD_LANES})
    _stack(CLUSTER_URL, "up")  # Kafka as configured is reused
    try:
        plain = _run(on_cluster.model_copy(update={"redis_wait_replicas": 0}), run, kill=False)
        waited = _run(on_cluster.model_copy(update={"redis_wait_replicas": 1}), run, kill=False)
        killed = _run(on_cluster.model_copy(update={"redis_wait_replicas": 1}), run, kill=True)
    finally:
        _stack(CLUSTER_URL, "down", "redis")  # the next run starts from masters with their replicas again
    _stack(SENTINEL_URL, "up")
    try:
        failover = _run(base.model_copy(update={"redis_url": SENTINEL_URL, "redis_wait_replicas": 1}), run,
                        kill=True)
    finally:
        _stack(SENTINEL_URL, "down", "redis")
    return {"master_kill_lost": killed["lost"], "master_kill_duplicates": killed["duplicates"],
            "master_kill_stall_s": killed["stall_s"], "master_kill_node": killed["node"],
            "master_kill_mode": "cluster", "wait_off_drain_s": plain["drain_s"], "wait_on_drain_s": waited["drain_s"],
            "wait_cost_pct": round(100 * (waited["drain_s"] / plain["drain_s"] - 1), 1),
            "sentinel_kill_lost": failover["lost"], "sentinel_kill_duplicates": failover["duplicates"],
            "sentinel_kill_stall_s": failover["stall_s"], "sentinel_kill_node": failover["node"]}


def _run(base: Settings, run: int, kill: bool) -> dict[str, Any]:
    killed_at: float | None = None
    victim = ""
    with resident_pipeline(base, "masterkill" if kill else f"wait{base.redis_wait_replicas}", run, 1, RECIPIENTS,
                           log_level="INFO", visibility_timeout_s=5.0) as (settings, procs):
        produced = send(settings, [gridworld.crossing(0, f"mk{run}")])
        sink, lines = settings.sink_dir / "push.jsonl", SinkLines(settings.sink_dir / "push.jsonl")
        deadline = time.monotonic() + 300
        while lines() < RECIPIENTS and time.monotonic() < deadline:
            if kill and killed_at is None and lines() >= KILL_AT * RECIPIENTS:
                victim = _stack(base.redis_url, "kill-redis-master")
                killed_at = time.time()
            if procs.dead():
                raise RuntimeError(f"bench process died: {procs.dead()} (logs in {procs.log_dir})")
            time.sleep(0.02)
    (_alert, got), = ((a, g) for a, g in arrivals(sink).items() if a.split("-")[1] in produced)
    ids = [d for _, d in got]
    times = [t for t, _ in got]
    unique = len(set(ids))
    after = killed_at if killed_at is not None else times[0]
    return {"lost": RECIPIENTS - unique, "duplicates": len(ids) - unique, "node": victim,
            "stall_s": round(max((b - a for a, b in itertools.pairwise(times) if b >= after), default=0.0), 2),
            "drain_s": round(times[-1] - times[0], 2)}
