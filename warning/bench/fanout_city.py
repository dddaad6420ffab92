"""Scenario `fanout-city`: one red alert to a whole city's residents, enqueued by every worker.

For each size in WARNING_BENCH_CITY_SIZES (default 1,000,000 and 5,000,000 residents) over
1,000 grids: two Faust workers, three push consumers to the local sinks. A gas station of
the district (area 440305, every grid) crosses red; right after it, a station of one grid
whose alert lives on the same lifecycle partition crosses red too (the probe). Measured from
the city reading's produce:

- ``enqueue_s``: until every resident's job is queued (the alert's push count, targeted);
- ``first_handoff_ms``, ``all50_s`` / ``all90_s`` / ``all99_s``: until the first push, and
  50 / 90 / 99 % of the residents, reached the sink;
- ``bytes_per_job``: Redis memory grown by the time all are queued, per resident (jobs, the
  receipts of those already sent, counters);
- ``worker_partition_blocked_ms``: the probe's produce to its fan-out done (the worker's
  ``alert_enqueued`` line) — how long the partition that owns the city alert kept another
  alert waiting; ``city_step_ms`` the same for the city alert itself (its units published),
  ``probe_first_handoff_ms`` the probe's first push (it queues behind the city's jobs);
- ``units_by_worker``: the work units each worker enqueued (from their logs).

With WARNING_BENCH_CITY_CLUSTER=1 the first size runs again on the local Redis Cluster
(6 shard lanes), as ``*_cluster``.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import redis

from warning import redis_client
from warning.bench import gridworld
from warning.bench.gridworld import BENCH_DIR, sample
from warning.bench.harness import stack
from warning.bench.kafka_probe import stable_members
from warning.bench.master_chaos import CLUSTER_SHARD_LANES, CLUSTER_URL
from warning.bench.ours import send, warm_producer
from warning.bench.residents import SinkLines, arrivals, poll_until, resident_pipeline
from warning.config import Settings
from warning.keys import Keys
from warning.models import alert_key
from warning.partitions import partition_of

SIZES = [int(n) for n in os.environ.get("WARNING_BENCH_CITY_SIZES", "1000000,5000000").split(",")]
GRIDS = 1000
DISTRICT = "440305"
CITY_STATION = "CITY-GAS-0"  # bench readings' station ids end in a number (ours.send keys its times by it)


def _probe_grid(partitions: int) -> int:
    """A grid whose gas alert is stepped by the partition that owns the district's."""
    owner = partition_of(alert_key("gas", DISTRICT), partitions)
    return next(g for g in range(GRIDS) if partition_of(alert_key("gas", gridworld.grid_id(g)), partitions) == owner)


def _reading(station: str) -> dict[str, Any]:
    return {"station_id": station, "kind": "gas_lel", "value": 80.0, "unit": "%LEL",
            "observed_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())}


def _city_alert_id(client: redis.Redis, keys: Keys) -> str | None:
    members = [m.decode() if isinstance(m, bytes) else str(m) for m in client.zrange(keys.active_alerts, 0, -1)]
    return next((m for m in members if m.startswith(f"gas-{DISTRICT}-")), None)


def _targeted(client: redis.Redis, keys: Keys, alert_id: str) -> int:
    """The alert's push jobs queued so far, over the shards (the enqueue script counts them)."""
    return sum(int(client.hget(keys.delivery_counts(alert_id, "push", shard), "targeted") or 0)
               for shard in range(keys.shards))


def _worker_lines(logs: Path, event: bytes) -> dict[str, list[dict[str, Any]]]:
    """Both workers' JSON log lines of one event."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in ("worker", "worker-b"):
        log = logs / f"{name}.log"
        lines = log.read_bytes().splitlines() if log.exists() else []
        out[name] = [orjson.loads(line) for line in lines if event in line and line.startswith(b"{")]
    return out


def _assignments_recovered(logs: Path) -> bool:
    """Each worker's log says its recovery finished after its last partition assignment
    (faust-streaming's own log lines)."""
    for name in ("worker", "worker-b"):
        text = (logs / f"{name}.log").read_bytes() if (logs / f"{name}.log").exists() else b""
        if text.rfind(b"[^---Recovery]: Worker ready") < max(text.rfind(b"Setting newly assigned partitions"), 0):
            return False
    return True


def _enqueued_at(logs: Path, alert_id: str) -> float:
    """When the lifecycle agent logged the alert's fan-out done (its ``alert_enqueued`` line)."""
    found = [line for lines in _worker_lines(logs, b'"alert_enqueued"').values() for line in lines
             if line.get("alert_id") == alert_id]
    if not found:
        raise RuntimeError(f"fanout-city: no alert_enqueued line for {alert_id}")
    return datetime.fromisoformat(str(found[0]["timestamp"]).replace("Z", "+00:00")).timestamp()


def one(base: Settings, run: int, residents: int, label: str) -> dict[str, Any]:
    probe = _probe_grid(base.partitions)
    probe_station = f"PROBE-GAS-{probe}"
    stations = {CITY_STATION: DISTRICT, probe_station: gridworld.grid_id(probe)}
    with resident_pipeline(base, f"city{label}", run, GRIDS, residents // GRIDS, log_level="INFO",
                           stations=stations) as (settings, procs):
        procs.start("worker-b", "worker")
        poll_until("both workers in the group", lambda: stable_members(settings.kafka_bootstrap, settings.app_id) == 2,
              180, procs)
        # A stable group is not yet a worker that fetches: a reading produced while the last
        # assignment was still being recovered waited ~1 s for its first fetch (2 runs of 3
        # on 2026-12-03), which the figures then counted as the city alert's.
        poll_until("both workers recovered their last assignment",
                   lambda: _assignments_recovered(BENCH_DIR / "logs" / f"city{label}{run}"), 60, procs)
        client = redis_client.connect_sync(settings.redis_url)
        keys = Keys(settings.redis_prefix, settings.shard_lanes)
        prod = warm_producer(settings)
        try:
            before = int(client.info("memory")["used_memory"])
            produced = time.time()
            send(settings, [_reading(CITY_STATION)], prod=prod)
            probe_produced = time.time()
            send(settings, [_reading(probe_station)], prod=prod)
            alert_id = poll_until("the city alert recorded", lambda: _city_alert_id(client, keys), 120, procs)
            poll_until("every resident queued", lambda: _targeted(client, keys, alert_id) >= residents, 1200, procs)
            enqueue_s = time.time() - produced
            grown = int(client.info("memory")["used_memory"]) - before
            sink = settings.sink_dir / "push.jsonl"
            lines = SinkLines(sink)
            poll_until("every push handed off", lambda: lines() >= residents + residents // GRIDS, 1800, procs)
        finally:
            prod.close()
            client.close()
    logs = BENCH_DIR / "logs" / f"city{label}{run}"
    units = {name: sum(1 for line in lines if line.get("alert_id") == alert_id)
             for name, lines in _worker_lines(logs, b'"fanout_unit_enqueued"').items()}
    got = arrivals(sink)
    city = [at for at, _ in got[alert_id]]
    probe_id = next(a for a in got if a != alert_id)
    if len(city) != residents:
        raise RuntimeError(f"fanout-city: {len(city):,} of {residents:,} residents reached (duplicates or loss)")
    return {"enqueue_s": round(enqueue_s, 2), "first_handoff_ms": round((city[0] - produced) * 1000, 1),
            "all50_s": round(city[residents // 2 - 1] - produced, 2),
            "all90_s": round(city[int(residents * 0.9) - 1] - produced, 2),
            "all99_s": round(city[int(residents * 0.99) - 1] - produced, 2),
            "bytes_per_job": round(grown / residents),
            "worker_partition_blocked_ms": round((_enqueued_at(logs, probe_id) - probe_produced) * 1000, 1),
            "city_step_ms": round((_enqueued_at(logs, alert_id) - produced) * 1000, 1),
            "probe_first_handoff_ms": round((got[probe_id][0][0] - probe_produced) * 1000, 1),
            "units_by_worker": units, "residents": residents, "handoff_samples_s": sample([t - produced for t in city])}


def scenario(base: Settings, run: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for n, residents in enumerate(SIZES):
        suffix = "" if n == 0 else f"_{residents // 1_000_000}m" if residents % 1_000_000 == 0 else f"_{residents}"
        result.update({f"{k}{suffix}": v for k, v in one(base, run, residents, f"{residents // 1000}k").items()})
    if os.environ.get("WARNING_BENCH_CITY_CLUSTER") == "1":
        stack("up", env={"WARNING_REDIS_URL": CLUSTER_URL})
        try:
            on_cluster = base.model_copy(update={"redis_url": CLUSTER_URL, "shard_lanes": CLUSTER_SHARD_LANES})
            figures = one(on_cluster, run, SIZES[0], f"{SIZES[0] // 1000}kc")
            result.update({f"{k}_cluster": v for k, v in figures.items()})
        finally:
            stack("down", "redis", env={"WARNING_REDIS_URL": CLUSTER_URL})
    return result
