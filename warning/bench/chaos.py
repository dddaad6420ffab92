"""Scenario `chaos`: one red alert to 100,000 residents through three push consumers while
things break: at 20 % delivered, kill -9 of one consumer; at 40 %, kill -9 of the Faust
worker and a restart; at 60 %, a restart of Redis (from its AOF). Counted at the sinks:
deliveries lost, deliveries sent twice, the longest stall in arrivals (time to recover),
and how long the restarted worker took to turn a new reading into a dispatched alert
(recorded in Redis). On the local Kafka cluster (``--cluster``) it also kills brokers
(warning/bench/broker_chaos.py)."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from warning import redis_client
from warning.bench import broker_chaos, gridworld, master_chaos
from warning.bench.harness import STACK
from warning.bench.ours import send
from warning.bench.residents import SinkLines, arrivals, resident_pipeline
from warning.config import Settings
from warning.feeds import consumer_lag
from warning.keys import Keys

RECIPIENTS = 100_000
BROKER_FIGURES = [f"{run}_{figure}" for run in ("broker_kill", "leader_kill")
                  for figure in ("lost", "duplicates", "stall_s", "recover_s")]
MASTER_FIGURES = [f"{run}_{figure}" for run in ("master_kill", "sentinel_kill")
                  for figure in ("lost", "duplicates", "stall_s")]


def dispatched(settings: Settings, grid: str) -> bool:
    """The grid's alert is recorded in Redis: evaluated, issued and dispatched."""
    client = redis_client.connect_sync(settings.redis_url, decode_responses=True)
    try:
        members = client.zrange(Keys(settings.redis_prefix).active_alerts, 0, -1)
        return any(str(m).split("-")[1] == grid for m in members)
    except redis.RedisError:  # restarting
        return False
    finally:
        client.close()


def _group_state(settings: Settings) -> dict[str, Any]:
    """Where a restarted worker that never dispatched stands: what it has not processed per
    input topic (from its group's committed offsets, as /metrics reports it) and its group."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="warning-bench")
    try:
        return {"lag": consumer_lag(settings), "group": str(admin.describe_groups([settings.app_id]))[:2000]}
    except Exception as exc:  # diagnostics only
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        admin.close()


def thread_stacks(pid: int) -> str:
    """Where every thread of a stalled process is (py-spy, from the bench extra), for the report."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        return "py-spy not installed"
    dump = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60)
    return dump.stdout + dump.stderr


def scenario(base: Settings, run: int) -> dict[str, Any]:
    faults: dict[str, float] = {}
    # INFO from our stages and from Faust (rebalances, recovery): a stall is rare, and its
    # log is what tells where the restarted worker stopped. A few hundred lines a run.
    with resident_pipeline(base, "chaos", run, 1, RECIPIENTS, log_level="INFO",
                           visibility_timeout_s=5.0) as (settings, procs):
        produced = send(settings, [gridworld.crossing(0, f"chaos{run}")])
        sink = settings.sink_dir / "push.jsonl"
        deadline, lines = time.monotonic() + 300, SinkLines(sink)
        while lines() < RECIPIENTS and time.monotonic() < deadline:
            done = lines() / RECIPIENTS
            if done >= 0.2 and "consumer_killed" not in faults:
                procs.kill("push-0")
                faults["consumer_killed"] = time.time()
            if done >= 0.4 and "worker_restarted" not in faults:
                procs.kill("worker")
                procs.start("worker", "worker")
                faults["worker_restarted"] = time.time()
                send(settings, [gridworld.crossing(1, f"after{run}")])  # the spare grid
            if done >= 0.6 and "redis_restarted" not in faults:
                subprocess.run([*STACK, "restart-redis"], check=True, capture_output=True)
                faults["redis_restarted"] = time.time()
            time.sleep(0.02)
        spare = gridworld.grid_id(1)
        stalled: dict[str, Any] | None = None
        while not dispatched(settings, spare):
            if procs.dead():
                raise RuntimeError(f"bench process died: {procs.dead()} (logs in {procs.log_dir})")
            if time.monotonic() > deadline:  # reported, not raised: the other figures still count
                stalled = {**_group_state(settings), "worker_stacks": thread_stacks(procs.children["worker"].pid)}
                (procs.log_dir / "worker-stall-stacks.txt").write_text(stalled["worker_stacks"])
                # Kept aside: the next run with this index starts its log directory afresh.
                kept = procs.log_dir.with_name(f"{procs.log_dir.name}-stalled-{time.strftime('%Y%m%dT%H%M%S')}")
                shutil.copytree(procs.log_dir, kept)
                stalled["logs"] = str(kept)
                break
            time.sleep(0.05)
        worker_back = time.time()
    (_alert_id, got), = ((a, g) for a, g in arrivals(sink).items() if a.split("-")[1] in produced)
    ids = [d for _, d in got]
    unique = len(set(ids))
    times = [t for t, _ in got]
    first_fault = min(faults.values())
    stalls = [b - a for a, b in itertools.pairwise(times) if b >= first_fault]
    return {"deliveries": RECIPIENTS, "lost": RECIPIENTS - unique, "duplicates": len(ids) - unique,
            "recover_s": round(max(stalls, default=0.0), 2),
            "worker_recover_s": None if stalled else round(worker_back - faults["worker_restarted"], 2),
            "worker_stalled": 0 if stalled is None else 1, "stall_state": stalled,
            "drain_s": round(times[-1] - times[0], 2), "faults": sorted(faults), **_cluster_runs(base, run)}


def _cluster_runs(base: Settings, run: int) -> dict[str, Any]:
    """The broker kills need a replicated Kafka, the master kills a replicated Redis (a Redis
    Cluster, and Sentinel): all run with `--cluster`. Their keys are always reported, None when not run."""
    out: dict[str, Any] = dict.fromkeys(BROKER_FIGURES + MASTER_FIGURES)
    if base.replication_factor >= 3:
        out.update(broker_chaos.scenario(base, run))
        out.update(master_chaos.scenario(base, run))
    else:
        out["broker_kill_note"] = out["master_kill_note"] = "not run: warning bench chaos --cluster runs it"
    return out
