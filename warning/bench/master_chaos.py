"""The chaos scenario's Redis master kill (`warning bench chaos --cluster`): one red alert to
100,000 residents through three push consumers on Redis with Sentinel-managed failover
(deploy/local/sentinel.py: a master, its replica, a Sentinel); at 40 % delivered the master
is killed (kill -9) and the Sentinel promotes the replica. Counted at the sinks: deliveries
lost, sent twice, and the longest stall in arrivals after the kill.

Replication is asynchronous: what the master acknowledged in its last moments may not have
reached the replica. The figures say what that cost here."""

from __future__ import annotations

import itertools
import time
from typing import Any

from warning.bench import gridworld
from warning.bench.harness import stack
from warning.bench.ours import send
from warning.bench.residents import SinkLines, arrivals, resident_pipeline
from warning.config import Settings

SENTINEL_URL = "redis+sentinel://127.0.0.1:36391/warning/0"  # master 36389, replica 36390
RECIPIENTS = 100_000
KILL_AT = 0.4


def _stack(*args: str) -> str:
    return stack(*args, env={"WARNING_REDIS_URL": SENTINEL_URL})


def scenario(base: Settings, run: int) -> dict[str, Any]:
    """The kill run with WAIT for the replica (``WARNING_REDIS_WAIT_REPLICAS=1``), and what
    WAIT costs: the same drain without a kill, with and without it."""
    _stack("up")  # the failover set (Kafka as configured is reused)
    try:
        on_sentinel = base.model_copy(update={"redis_url": SENTINEL_URL})
        plain = _run(on_sentinel.model_copy(update={"redis_wait_replicas": 0}), run, kill=False)
        waited = _run(on_sentinel.model_copy(update={"redis_wait_replicas": 1}), run, kill=False)
        killed = _run(on_sentinel.model_copy(update={"redis_wait_replicas": 1}), run, kill=True)
    finally:
        _stack("down", "redis")  # the next run starts from a master with its replica again
    return {"master_kill_lost": killed["lost"], "master_kill_duplicates": killed["duplicates"],
            "master_kill_stall_s": killed["stall_s"], "master_kill_node": killed["node"],
            "master_kill_mode": "sentinel", "wait_off_drain_s": plain["drain_s"], "wait_on_drain_s": waited["drain_s"],
            "wait_cost_pct": round(100 * (waited["drain_s"] / plain["drain_s"] - 1), 1)}


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
                victim = _stack("kill-redis-master")
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
