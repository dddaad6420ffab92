"""Scenario `reach`: seconds-to-reach under load. 5,000 quiet readings a second run in the
background; threshold crossings are injected one at a time, each for a grid of 10,000
residents (push, to local sinks through three consumers). Measured from the crossing
reading's produce to the first provider handoff of its alert, and to 99 % of its
recipients — timestamps from the producer and the sinks."""

from __future__ import annotations

import statistics
import threading
import time
from datetime import UTC, datetime
from typing import Any

from warning.bench import gridworld
from warning.bench.gridworld import percentile, sample
from warning.bench.kafka_probe import AlertWatcher
from warning.bench.ours import send, warm_producer
from warning.bench.residents import SinkLines, arrivals, resident_pipeline
from warning.config import Settings
from warning.feeds import batch_by_partition, producer

CROSSINGS = 6
RECIPIENTS = 10_000
BACKGROUND_PER_S = 5_000
BACKGROUND_STATIONS = 5_000
GAP_S = 3.0


class Background(threading.Thread):
    """Quiet rain-gauge readings at a steady rate, in 100 ms batches, until stopped."""

    def __init__(self, settings: Settings, per_s: int) -> None:
        super().__init__(daemon=True)
        self.settings, self.per_s = settings, per_s
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        prod = producer(self.settings)
        topic = self.settings.topic_prefix + "feeds.observations"
        tick, step = time.monotonic(), 0
        try:
            while not self.stop.is_set():
                at = datetime.now(UTC).isoformat()
                batch = [{"station_id": f"bg-{(step * self.per_s // 10 + j) % BACKGROUND_STATIONS}",
                          "kind": "rainfall", "value": 0.0, "unit": "mm", "observed_at": at, "period_s": 300}
                         for j in range(self.per_s // 10)]
                for partition, key, value in batch_by_partition(batch, self.settings.partitions, 500):
                    prod.send(topic, key=key.encode(), value=value, partition=partition)
                self.sent += len(batch)
                step += 1
                tick += 0.1
                time.sleep(max(0.0, tick - time.monotonic()))
        finally:
            prod.flush()
            prod.close()


def scenario(base: Settings, run: int) -> dict[str, Any]:
    with resident_pipeline(base, "reach", run, CROSSINGS, RECIPIENTS) as (settings, procs):
        watcher = AlertWatcher(settings.kafka_bootstrap, settings.topic_prefix + "warning.alerts").start()
        try:
            send(settings, [gridworld.crossing(CROSSINGS, f"warm{run}")])  # the spare, empty grid
            watcher.wait_for({gridworld.grid_id(CROSSINGS)}, timeout=120)
        finally:
            watcher.close()
        background = Background(settings, BACKGROUND_PER_S)
        background.start()
        time.sleep(2.0)  # under load before the first crossing
        produced: dict[str, float] = {}
        prod = warm_producer(settings)
        for k in range(CROSSINGS):
            produced.update(send(settings, [gridworld.crossing(k, f"reach{run}")], prod=prod))
            time.sleep(GAP_S)
        prod.close()
        background.stop.set()
        background.join()
        sink = settings.sink_dir / "push.jsonl"
        deadline, lines = time.monotonic() + 180, SinkLines(sink)
        while lines() < CROSSINGS * RECIPIENTS and time.monotonic() < deadline:
            if procs.dead():
                raise RuntimeError(f"bench process died: {procs.dead()}")
            time.sleep(0.2)
    by_alert = arrivals(sink)
    first, all99 = [], []
    for alert_id, got in by_alert.items():
        grid = alert_id.split("-")[1]
        if grid in produced and len(got) >= RECIPIENTS * 0.99:
            first.append((got[0][0] - produced[grid]) * 1000)
            all99.append(got[int(0.99 * RECIPIENTS) - 1][0] - produced[grid])
    if len(first) != CROSSINGS:
        raise RuntimeError(f"{len(first)} of {CROSSINGS} alerts reached 99 % of their recipients")
    return {"first_p50_ms": round(statistics.median(first), 1), "first_p99_ms": round(percentile(first, 0.99), 1),
            "all99_p50_s": round(statistics.median(all99), 3), "all99_max_s": round(max(all99), 3),
            "crossings": CROSSINGS, "recipients_per_alert": RECIPIENTS,
            "background_per_s": round(background.sent / (GAP_S * CROSSINGS + 2.0)),
            "first_samples_ms": sample(first)}
