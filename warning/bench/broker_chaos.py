"""The chaos scenario's Kafka runs (`warning bench chaos --cluster`, on the local 3-node
cluster): a stream of red alerts, one grid every STEP_S, each to PER_GRID residents on push,
while one broker is killed (kill -9) and started again 30 s later. The first run kills a
broker that does not lead the metadata quorum; the second kills the quorum's leader (the
active controller) as well as a broker. Counted at the sinks: deliveries lost, sent twice,
the longest stall in arrivals after the kill, and the time from the kill to the first
delivery of an alert whose reading was produced after it."""

from __future__ import annotations

import itertools
import time
from typing import Any

from warning.bench import gridworld
from warning.bench.harness import stack
from warning.bench.ours import send, warm_producer
from warning.bench.residents import SinkLines, arrivals, resident_pipeline
from warning.config import Settings

GRIDS = 80
PER_GRID = 500
STEP_S = 0.5
KILL_AT = 16  # the 17th grid's reading is the first produced with a broker down
RESTART_AFTER_S = 30.0


def kill_run(base: Settings, run: int, victim: str) -> dict[str, Any]:
    """One run; ``victim`` is ``follower`` (a broker only) or ``leader`` (the quorum leader)."""
    tag = f"bk{victim[0]}{run}"
    with resident_pipeline(base, f"brokerkill-{victim}", run, GRIDS, PER_GRID, consumers=2, log_level="INFO",
                           visibility_timeout_s=5.0) as (settings, procs):
        prod = warm_producer(settings)
        killed: tuple[str, float] | None = None
        restarted_at: float | None = None
        sent_at: dict[str, float] = {}
        started = time.monotonic()
        try:
            for i in range(GRIDS):
                if i == KILL_AT:
                    killed = (stack("kill-kafka", victim), time.time())
                sent_at[gridworld.grid_id(i)] = time.time()
                send(settings, [gridworld.crossing(i, tag)], prod=prod)
                if killed and restarted_at is None and time.time() - killed[1] >= RESTART_AFTER_S:
                    stack("start-kafka", killed[0])
                    restarted_at = time.time()
                time.sleep(max(0.0, started + (i + 1) * STEP_S - time.monotonic()))
        finally:
            prod.close()
            if killed and restarted_at is None:
                time.sleep(max(0.0, killed[1] + RESTART_AFTER_S - time.time()))
                stack("start-kafka", killed[0])
                restarted_at = time.time()
        expected = GRIDS * PER_GRID
        sink, lines = settings.sink_dir / "push.jsonl", SinkLines(settings.sink_dir / "push.jsonl")
        deadline = time.monotonic() + 240
        while lines() < expected and time.monotonic() < deadline:
            if procs.dead():
                raise RuntimeError(f"bench process died: {procs.dead()} (logs in {procs.log_dir})")
            time.sleep(0.05)
    assert killed is not None and restarted_at is not None
    got = {a: g for a, g in arrivals(sink).items() if a.split("-")[1] in sent_at}
    ids = [d for g in got.values() for _, d in g]
    times = sorted(t for g in got.values() for t, _ in g)
    after = [min(t for t, _ in g) for a, g in got.items() if sent_at[a.split("-")[1]] >= killed[1]]
    unique = len(set(ids))
    return {"deliveries": expected, "lost": expected - unique, "duplicates": len(ids) - unique,
            "stall_s": round(max((b - a for a, b in itertools.pairwise(times) if b >= killed[1]), default=0.0), 2),
            "recover_s": round(min(after) - killed[1], 2) if after else None,
            "alerts_reached": len(got), "node": killed[0]}


def scenario(base: Settings, run: int) -> dict[str, Any]:
    """Both runs, their figures prefixed ``broker_kill_`` and ``leader_kill_``."""
    out: dict[str, Any] = {}
    for victim, prefix in (("follower", "broker_kill"), ("leader", "leader_kill")):
        for key, value in kill_run(base, run, victim).items():
            out[f"{prefix}_{key}"] = value
    return out
