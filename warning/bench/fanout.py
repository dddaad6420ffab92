"""Scenario `fanout`: one red alert to 1,000,000 residents.

1. import the residents (CSV-equivalent JSONL) over 1,000 grids — import rate;
2. fan out one red alert with no consumer running — enqueue time, and Redis bytes per
   queued job (memory before and after);
3. with three push consumers running, fan out a second red alert — drain rate (first to
   last arrival at the local sink) and the time from the alert's issue to 50/90/99 % of
   recipients handed to the channel (the alert's reach histogram), and how many Redis AOF
   rewrites overlapped the drain (a million jobs double the AOF and Redis forks a rewrite;
   they are not what limits the drain: with automatic rewrites off, none overlapped and a
   run drained at 15,056/s, as fast as with them — the two cores are busy with the
   consumers, Redis and Kafka either way).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import redis

from warning import redis_client
from warning.bench.harness import ROOT, drop_namespace, namespace
from warning.bench.residents import SinkLines
from warning.bootstrap import bootstrap
from warning.config import Settings
from warning.keys import Keys
from warning.models import AlertVersion, Tier
from warning.pipeline.fanout import fan_out
from warning.readmodel import alert_status
from warning.runner import Processes, env_for
from warning.targeting.importer import import_recipients, store_grids

RESIDENTS = int(os.environ.get("WARNING_BENCH_FANOUT_N", "1000000"))
GRIDS = 1000
CONSUMERS = 3
BENCH_DIR = ROOT / ".run" / "bench"


def _grids() -> bytes:
    features = [{"type": "Feature", "properties": {"grid_id": f"440305001{g:03d}", "name": f"网格{g}"},
                 "geometry": {"type": "Polygon", "coordinates": [[
                     [113.9 + (g % 40) * 0.001, 22.5 + (g // 40) * 0.001],
                     [113.901 + (g % 40) * 0.001, 22.5 + (g // 40) * 0.001],
                     [113.901 + (g % 40) * 0.001, 22.501 + (g // 40) * 0.001],
                     [113.9 + (g % 40) * 0.001, 22.5 + (g // 40) * 0.001]]]}} for g in range(GRIDS)]
    return orjson.dumps({"type": "FeatureCollection", "features": features})


def _people(count: int) -> Path:
    path = BENCH_DIR / f"residents-{count}.jsonl"
    if not path.exists():
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            for i in range(count):
                out.write(orjson.dumps({"id": f"r{i:07d}", "role": "resident", "phone": f"+86138{i:08d}",
                                        "push_token": f"tok-{i}", "channels": ["push", "sms"],
                                        "grid": f"440305001{i % GRIDS:03d}"}) + b"\n")
    return path


def _alert(alert_id: str) -> AlertVersion:
    now = datetime.now(UTC)
    return AlertVersion(alert_id=alert_id, key="rainstorm:440305001", hazard="rainstorm", area="440305001",
                        tier=Tier.red, version=1, msg_type="Alert", caused_at=now, issued_at=now,
                        expires=now + timedelta(hours=6), cause="bench")


def _aof_rewrites(client: redis.Redis, ended: bool = False) -> int:
    """Redis AOF rewrites completed so far (at the end, plus one still running). Enqueueing a
    million jobs doubles the AOF, so Redis forks a rewrite; on two shared cores that child
    competes with the consumers, and a drain it overlaps is measured slower."""
    info: Any = client.info("persistence")
    return int(info.get("aof_rewrites", 0)) + (int(info.get("aof_rewrite_in_progress", 0)) if ended else 0)


def scenario(base: Settings, run: int) -> dict[str, Any]:
    sinks = BENCH_DIR / "fanout-sinks"
    shutil.rmtree(sinks, ignore_errors=True)
    settings = namespace(base, "fanout", run, sink_dir=sinks)
    keys = Keys(settings.redis_prefix, settings.shard_lanes)  # the lanes the pipeline queues into
    client = redis_client.connect_sync(settings.redis_url)
    result: dict[str, Any] = {"residents": RESIDENTS}
    try:
        store_grids(client, keys, _grids(), "bench grids")
        started = time.perf_counter()
        report = import_recipients(client, keys, _people(RESIDENTS))
        result["import_s"] = round(time.perf_counter() - started, 2)
        result["import_errors"] = len(report.errors)

        c = bootstrap(settings, logging=False)
        before = int(client.info("memory")["used_memory"])

        async def enqueue(alert_id: str) -> tuple[int, float]:
            started = time.perf_counter()
            count = await fan_out(c, _alert(alert_id))
            return count, time.perf_counter() - started

        count, seconds = asyncio.run(enqueue(f"fanout-{run}-a"))
        result["enqueued"], result["enqueue_s"] = count, round(seconds, 2)
        result["redis_bytes_per_job"] = round((int(client.info("memory")["used_memory"]) - before) / count)
        for tier in (Tier.red, Tier.orange, Tier.yellow, Tier.blue):
            for shard in range(keys.shards):
                client.delete(keys.queue("push", tier, shard))  # only the enqueue was measured here

        env = {**env_for(settings), "WARNING_RATE_LIMITS": '{"push": 10000000, "sms": 10000000}',
               "WARNING_LOG_LEVEL": "WARNING"}
        with Processes(BENCH_DIR / "logs" / f"fanout{run}", env=env) as procs:
            for i in range(CONSUMERS):
                procs.start(f"push-{i}", "consumer", "push")
            c = bootstrap(settings, logging=False)  # a fresh event loop, a fresh client
            second = f"fanout-{run}-b"
            rewrites_before = _aof_rewrites(client)
            asyncio.run(enqueue(second))
            # What the push consumers drain: the residents' push jobs, not the alert's whole
            # count (a red alert also queues the area's cell broadcasts, which nobody drains here).
            pushes = sum(int(client.hget(keys.delivery_counts(second, "push", shard), "targeted") or 0)
                         for shard in range(keys.shards))
            sink = sinks / "push.jsonl"
            deadline, lines = time.monotonic() + 600, SinkLines(sink)
            while lines() < pushes:
                if time.monotonic() > deadline:
                    raise TimeoutError("the drain did not finish in 10 minutes")
                time.sleep(0.2)
            result["aof_rewrites_during_drain"] = _aof_rewrites(client, ended=True) - rewrites_before
        arrivals = sorted(float(orjson.loads(line)["received_at"]) for line in sink.read_bytes().splitlines()
                          if b'"' + second.encode() + b'"' in line)
        result["drain_per_s"] = round(len(arrivals) / max(arrivals[-1] - arrivals[0], 1e-6))

        async def reach() -> dict[str, Any]:
            c2 = bootstrap(settings, logging=False)
            try:
                status = await alert_status(c2.store, second)
                return status["reach"] if status else {}
            finally:
                await c2.redis.aclose()

        handoff = asyncio.run(reach())
        result.update({f"handoff_{k}": v for k, v in handoff.items()})
    finally:
        client.close()
        drop_namespace(settings)
        shutil.rmtree(sinks, ignore_errors=True)
    return result
