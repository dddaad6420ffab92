"""Scenario `peer`: the same burst of 20,000 alerts through Prometheus Alertmanager and through
this pipeline, each alert to one webhook at the same sink.

Alertmanager (Debian's prometheus-alertmanager 0.25, installed if missing) runs locally with
HA gossip off and is configured for speed: every alert its own group (``group_by: [seq]``),
``group_wait: 0s``, ``group_interval: 1s``; alerts are posted to ``/api/v2/alerts`` in
batches of 100. Ours: 20,000 readings, each over a threshold for a distinct grid with one
webhook endpoint, produced to Kafka batched per partition. Both clocks are outside: the
posting/producing loop and the sink. What differs in the work: Alertmanager evaluates no
rules, keeps alerts in memory only and sends unsigned webhooks; we evaluate the rule pack
over windowed state, persist through Kafka (acks=all) and Redis (AOF), keep lifecycle
state, receipts and escalation timers, and sign every webhook.

Beside them, the webhook ceiling (limits.py): what one Python process alone can post to
the same sink. ``target_over_ceiling`` > 1 means 4x Alertmanager's rate is more webhooks a
second than a Python delivery process could hand to this sink even with nothing else to do.
And where the CPU goes (cpu.py): each side's CPU per alert, the sink's per webhook, and
``target_cpu_budget_us``, what the whole host could spend per alert at 4x Alertmanager's
rate once the sink has its share.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from warning.bench import gridworld, limits
from warning.bench.cpu import CpuMeter, stack_pid
from warning.bench.gridworld import BENCH_DIR, WebhookSink, percentile, sample
from warning.bench.ours import grid_pipeline, send, wait_for_keys, warm_producer
from warning.bench.profile import Profiles
from warning.config import Settings
from warning.runner import free_port

BURST = int(os.environ.get("WARNING_BENCH_PEER_N", "20000"))
AM_BATCH = 100
GRID_CONSUMERS = 2


def alertmanager_binary() -> str:
    found = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError("prometheus-alertmanager is missing: apt-get install prometheus-alertmanager")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "prometheus-alertmanager"]):
        subprocess.run(cmd, check=True, capture_output=True, env=env)
    subprocess.run(["service", "prometheus-alertmanager", "stop"], capture_output=True)  # we run our own
    return shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"


def run_alertmanager(n: int, sink: WebhookSink, workdir: Path) -> tuple[float, list[float], float]:
    """Alerts/s, each alert's latency, and Alertmanager's CPU microseconds per alert."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    config = workdir / "alertmanager.yml"
    config.write_text(yaml.safe_dump({
        "route": {"receiver": "sink", "group_by": ["seq"], "group_wait": "0s", "group_interval": "1s",
                  "repeat_interval": "24h"},
        "receivers": [{"name": "sink", "webhook_configs": [{"url": f"{sink.url}/am", "send_resolved": False}]}]}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([alertmanager_binary(), f"--config.file={config}", f"--storage.path={workdir / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
                             "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=(workdir / "am.log").open("wb"))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"Alertmanager did not become ready (see {workdir / 'am.log'})")
            time.sleep(0.1)
        now = datetime.now(UTC)
        starts, ends = now.isoformat(), (now + timedelta(hours=1)).isoformat()
        sent: dict[str, float] = {}
        with httpx.Client(timeout=30) as client, CpuMeter({"alertmanager": [proc.pid]}) as cpu:
            for first in range(0, n, AM_BATCH):
                seqs = [str(i) for i in range(first, min(first + AM_BATCH, n))]
                batch = [{"labels": {"alertname": "BenchBurst", "seq": s}, "startsAt": starts, "endsAt": ends}
                         for s in seqs]
                at = time.time()
                client.post(f"{url}/api/v2/alerts", json=batch).raise_for_status()
                sent.update(dict.fromkeys(seqs, at))
            got = wait_for_keys(sink, set(sent), timeout=600)
    finally:
        proc.terminate()
        proc.wait(10)
    latencies = [(got[k] - t) * 1000 for k, t in sent.items()]
    return n / (max(got[k] for k in sent) - min(sent.values())), latencies, cpu.us_per(n)["alertmanager"]


def run_ours(base: Settings, run: int, n: int) -> tuple[float, list[float], dict[str, float], float]:
    """Alerts/s, each alert's latency, CPU microseconds per alert by process group, host busy %."""
    with WebhookSink(BENCH_DIR / f"peer-ours-{run}.tsv") as sink, \
            grid_pipeline(base, "peer", run, n, sink, consumers=GRID_CONSUMERS) as (settings, procs):
        readings = [gridworld.crossing(i, f"peer{run}") for i in range(n)]
        prod = warm_producer(settings)
        groups = {"worker": [procs.children["worker"].pid],
                  "consumers": [procs.children[f"grid-{i}"].pid for i in range(GRID_CONSUMERS)],
                  **{service: [pid] for service in ("redis", "kafka") if (pid := stack_pid(service))}}
        profiled = {name: proc.pid for name, proc in procs.children.items()}
        with CpuMeter(groups) as cpu, Profiles(profiled, f"peer{run}"):
            sent = send(settings, readings, prod=prod)
            got = wait_for_keys(sink, set(sent), timeout=1200, procs=procs)
        prod.close()
    latencies = [(got[k] - t) * 1000 for k, t in sent.items()]
    return n / (max(got[k] for k in sent) - min(sent.values())), latencies, cpu.us_per(n), cpu.host_busy_pct


def scenario(base: Settings, run: int, n: int = BURST) -> dict[str, Any]:
    with WebhookSink(BENCH_DIR / f"peer-ceiling-{run}.tsv") as sink, CpuMeter({"sink": [sink.proc.pid]}) as sink_cpu:
        ceiling = limits.webhook_ceiling(sink, n)
    with WebhookSink(BENCH_DIR / f"peer-am-{run}.tsv") as sink:
        peer_per_s, peer_latencies, peer_cpu_us = run_alertmanager(n, sink, BENCH_DIR / f"alertmanager-{run}")
    ours_per_s, ours, ours_us, host_busy_pct = run_ours(base, run, n)
    sink_us = sink_cpu.us_per(n)["sink"]
    cores = os.cpu_count() or 1
    result: dict[str, Any] = {"alerts": n,
              "ours_per_s": round(ours_per_s), "peer_per_s": round(peer_per_s),
              "throughput_ratio": round(ours_per_s / peer_per_s, 2),
              "webhook_ceiling_per_s": ceiling, "target_over_ceiling": round(4 * peer_per_s / ceiling, 2),
              "sink_cpu_us_per_post": sink_us, "peer_cpu_us_per_alert": peer_cpu_us,
              "ours_cpu_us_per_alert": round(sum(ours_us.values()), 1),
              **{f"ours_cpu_us_{name}": us for name, us in ours_us.items()},
              "ours_host_busy_pct": host_busy_pct,
              # What a whole host could spend per alert at 4x Alertmanager's rate, after the sink's share.
              "target_cpu_budget_us": round(cores * 1e6 / (4 * peer_per_s) - sink_us, 1),
              "ours_p50_ms": round(statistics.median(ours), 1), "ours_p99_ms": round(percentile(ours, 0.99), 1),
              "peer_p50_ms": round(statistics.median(peer_latencies), 1),
              "peer_p99_ms": round(percentile(peer_latencies, 0.99), 1)}
    result["p99_ratio"] = round(result["ours_p99_ms"] / result["peer_p99_ms"], 2)
    result["cpu_ratio"] = round(result["ours_cpu_us_per_alert"] / peer_cpu_us, 2) if peer_cpu_us else None
    result["ours_samples_ms"], result["peer_samples_ms"] = sample(ours), sample(peer_latencies)
    return result


def ours_only(base: Settings, run: int, n: int = BURST) -> dict[str, Any]:
    """Scenario `peer-ours`: our side of the burst alone (no Alertmanager, no ceiling), for
    back-to-back A/B runs of a CPU lever; with WARNING_BENCH_PROFILE set, py-spy profiles too."""
    per_s, latencies, cpu_us, busy = run_ours(base, run, n)
    return {"alerts": n, "ours_per_s": round(per_s), "ours_cpu_us_per_alert": round(sum(cpu_us.values()), 1),
            **{f"ours_cpu_us_{name}": us for name, us in cpu_us.items()}, "ours_host_busy_pct": busy,
            "ours_p50_ms": round(statistics.median(latencies), 1), "ours_p99_ms": round(percentile(latencies, 0.99), 1)}
