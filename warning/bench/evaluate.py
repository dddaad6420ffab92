"""Scenario `evaluate`: evaluate-stage throughput with the default pack over 10,000 stations.

Readings are produced to the real Kafka as fast as possible, batched per partition as
the ingest path does it (and, for the `_single` figure, one reading per message). After
the readings, every partition gets one red "marker" reading: Kafka keeps order within a
partition, so when every marker's alert is out on warning.alerts, every reading before
it has been evaluated. Throughput = readings / (last marker alert - first produce),
all timestamps taken outside the pipeline. Then, idle, the produce -> alert latency of
single threshold crossings at 20/s. A py-spy profile of the worker says what limits it.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import yaml

from warning.bench.harness import ROOT, drop_namespace, namespace
from warning.bench.kafka_probe import AlertWatcher
from warning.config import Settings
from warning.feeds import batch_by_partition, ensure_topics, producer
from warning.partitions import partition_of
from warning.runner import Processes, env_for

STATIONS = 10_000
ROUNDS = 30  # readings per station (every 5 minutes of event time)
SINGLE_READINGS = 20_000
BENCH_DIR = ROOT / ".run" / "bench"


def bench_directory(stations: int) -> Path:
    """A directory with `stations` stations spread over 100 townships of one district."""
    path = BENCH_DIR / f"directory-v2-{stations}.yaml"
    if not path.exists():
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({
            "city": {"code": "440300", "name": "深圳市"},
            "areas": [{"code": f"440305{t:03d}", "name": f"街道{t}"} for t in range(1, 101)],
            "stations": [{"id": f"ST{i:05d}", "area": f"440305{i % 100 + 1:03d}"} for i in range(stations)],
        }, allow_unicode=True))
    return path


def readings(stations: int, rounds: int, seed: int, t0: datetime) -> list[dict[str, Any]]:
    """A realistic mix: rain gauges, anemometers, thermometers and river gauges, mostly quiet,
    with a real downpour (20 mm per 5 min for the last 3 rounds) at 0.2 % of the rain gauges."""
    rnd = random.Random(seed)
    out = []
    for r in range(rounds):
        at = (t0 + timedelta(minutes=5 * r)).isoformat()
        for i in range(stations):
            slot = i % 10
            if slot < 6:
                storm = i % 500 == 0 and r >= rounds - 3
                value = 20.0 if storm else (round(rnd.random() * 2, 1) if rnd.random() < 0.1 else 0.0)
                kind, unit = "rainfall", "mm"
            elif slot < 8:
                kind, unit, value = "wind_speed", "m/s", round(rnd.uniform(0, 10), 1)
            elif slot < 9:
                kind, unit, value = "temperature", "°C", round(rnd.uniform(24, 34), 1)
            else:
                kind, unit, value = "water_level", "m", round(rnd.uniform(2, 3.9), 2)
            out.append({"station_id": f"ST{i:05d}", "kind": kind, "value": value, "unit": unit,
                        "observed_at": at, "period_s": 300})
    return out


def markers(tag: str, partitions: int, at: datetime) -> list[tuple[int, str, bytes]]:
    """One red gas reading per partition, for a station that hashes to that partition."""
    out = []
    for p in range(partitions):
        n = 0
        while partition_of(station := f"mark-{tag}-{p}-{n}", partitions) != p:
            n += 1
        reading = {"station_id": station, "kind": "gas_lel", "value": 80.0, "unit": "%LEL",
                   "observed_at": at.isoformat()}
        out.append((p, station, orjson.dumps([reading])))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _throughput(settings: Settings, watcher: AlertWatcher, messages: list[tuple[int, str, bytes]],
                count: int, tag: str, t_end: datetime, pid: int, result: dict[str, Any], mode: str) -> float:
    marks = markers(tag, settings.partitions, t_end)
    prod = producer(settings)
    topic = settings.topic_prefix + "feeds.observations"
    started = time.time()
    cpu_before = cpu_seconds(pid)
    for partition, key, value in [*messages, *marks]:
        prod.send(topic, key=key.encode(), value=value, partition=partition)
    prod.flush()
    prod.close()
    done = watcher.wait_for({f"station:{key}" for _, key, _ in marks}, timeout=600)
    # Near 100 %: the worker's own CPU is the limit; well below: it waits (broker, producer, fetch).
    result[f"worker_cpu_pct{'' if mode == 'batched' else '_single'}"] = round(
        100 * (cpu_seconds(pid) - cpu_before) / (done - started), 1)
    return count / (done - started)


def _latency(settings: Settings, watcher: AlertWatcher, tag: str, samples: int = 40) -> list[float]:
    prod = producer(settings)
    topic = settings.topic_prefix + "feeds.observations"
    sent: dict[str, float] = {}
    for k in range(samples):
        station = f"lat-{tag}-{k}"
        value = orjson.dumps({"station_id": station, "kind": "gas_lel", "value": 80.0, "unit": "%LEL",
                              "observed_at": datetime.now(UTC).isoformat()})
        sent[f"station:{station}"] = time.time()
        prod.send(topic, key=station.encode(), value=value)
        prod.flush()
        time.sleep(0.05)  # 20 readings/s: an idle pipeline, one crossing at a time
    prod.close()
    watcher.wait_for(set(sent), timeout=60)
    return sorted((watcher.arrived[a] - t) * 1000 for a, t in sent.items())


def _py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else (shutil.which("py-spy") or "py-spy")


def _profile(raw: Path) -> dict[str, Any]:
    """Where the worker's samples were: top functions by self time and by inclusive time."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines() if raw.exists() else []:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split("/")[-1].split(":")[0] + ")"
                  for f in stack.split(";") if f]
        total += n
        if frames:
            self_time[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return {"samples": 0}

    def top(counter: Counter[str], k: int) -> list[list[Any]]:
        return [[name, round(100 * n / total, 1)] for name, n in counter.most_common(k)]

    ours = Counter({k: v for k, v in inclusive.items()
                    if any(m in k for m in ("evaluate", "ingest", "pack.py", "models.py", "tables", "topics",
                                            "aiokafka", "orjson", "pydantic", "json"))})
    return {"samples": total, "top_self_pct": top(self_time, 12), "top_inclusive_pct": top(ours, 12)}


def scenario(base: Settings, run: int, stations: int = STATIONS, rounds: int = ROUNDS) -> dict[str, Any]:
    result: dict[str, Any] = {}
    directory = bench_directory(stations)
    t0 = datetime.now(UTC) - timedelta(minutes=5 * rounds + 60)
    data = readings(stations, rounds, seed=run, t0=t0)
    for mode in ("batched", "single"):
        settings = namespace(base, "evaluate", run * 10 + (mode == "single"), directory_file=directory)
        ensure_topics(settings)
        if mode == "batched":
            messages = batch_by_partition(data, settings.partitions, 500)
            count = len(data)
        else:
            subset = data[-SINGLE_READINGS:]
            messages = [(partition_of(r["station_id"], settings.partitions), r["station_id"], orjson.dumps(r))
                        for r in subset]
            count = len(subset)
        logs = BENCH_DIR / "logs" / f"run{run}-{mode}"
        with Processes(logs, env={**env_for(settings), "WARNING_DIRECTORY_FILE": str(directory)}) as procs:
            procs.start("worker", "worker")
            watcher = AlertWatcher(settings.kafka_bootstrap, settings.topic_prefix + "warning.alerts").start()
            try:
                _latency(settings, watcher, f"warm{run}{mode}", samples=1)  # the worker is up and assigned
                if mode == "batched":  # idle produce -> alert latency, before load and without a profiler
                    latencies = _latency(settings, watcher, f"lat{run}")
                    result["alert_p50_ms"] = round(statistics.median(latencies), 1)
                    result["alert_p99_ms"] = round(latencies[int(0.99 * (len(latencies) - 1))], 1)
                profile_file = logs / "profile.txt"
                spy = None
                if mode == "batched" and os.environ.get("WARNING_BENCH_PROFILE", "1") == "1":
                    spy = subprocess.Popen([_py_spy(), "record", "--pid", str(procs.children["worker"].pid),
                                            "--format", "raw", "--rate", "50", "--nonblocking",
                                            "--output", str(profile_file)],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                rate = _throughput(settings, watcher, messages, count, f"{run}{mode}",
                                   t0 + timedelta(minutes=5 * rounds), procs.children["worker"].pid, result, mode)
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(timeout=30)
                    result["profile"] = _profile(profile_file)
                if mode == "batched":
                    result["obs_per_s"] = round(rate)
                    result["readings"] = count
                    result["messages"] = len(messages)
                    result["alerts"] = len(watcher.arrived)
                else:
                    result["obs_per_s_single"] = round(rate)
                    result["readings_single"] = count
            finally:
                watcher.close()
        drop_namespace(settings)
    result["stations"] = stations
    return result
