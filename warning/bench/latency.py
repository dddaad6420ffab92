"""Scenario `latency`: an idle pipeline, 20 threshold crossings a second, each for its own
area with one grid-webhook recipient; from the reading's produce to the webhook's receipt
at the sink (both timestamps outside the pipeline). Then, in the same run, the host's
floor: the same hops with no work at any of them (limits.py)."""

from __future__ import annotations

import statistics
import time
from typing import Any

from warning.bench import gridworld, limits
from warning.bench.gridworld import BENCH_DIR, WebhookSink, percentile, sample
from warning.bench.ours import grid_pipeline, send, wait_for_keys, warm_producer
from warning.config import Settings

RATE = 20.0
SAMPLES = 300


def scenario(base: Settings, run: int, samples: int = SAMPLES) -> dict[str, Any]:
    with WebhookSink(BENCH_DIR / f"latency-sink-{run}.tsv") as sink, \
            grid_pipeline(base, "latency", run, samples, sink) as (settings, procs):
        sent: dict[str, float] = {}
        prod = warm_producer(settings)
        start = time.monotonic()
        for i in range(samples):
            sent.update(send(settings, [gridworld.crossing(i, f"lat{run}")], prod=prod))
            time.sleep(max(0.0, start + (i + 1) / RATE - time.monotonic()))
        got = wait_for_keys(sink, set(sent), timeout=120, procs=procs)
        hops = limits.latency_floor(settings, sink, prod, samples, RATE)
        prod.close()
    latencies = [(got[k] - t) * 1000 for k, t in sent.items()]
    p99 = percentile(latencies, 0.99)
    return {"p50_ms": round(statistics.median(latencies), 2), "p90_ms": round(percentile(latencies, 0.9), 2),
            "p99_ms": round(p99, 2), "max_ms": round(max(latencies), 2), **hops,
            # the target is relative: the host's floor moves by a third between runs of a shared host
            "p99_over_floor": round(p99 / hops["floor_p99_ms"], 2) if hops.get("floor_p99_ms") else None,
            "samples": len(latencies), "samples_ms": sample(latencies)}
