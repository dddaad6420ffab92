"""Run scenarios, print the table, keep the JSON (bench/results/latest.json + a dated copy)."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from warning.bench import chaos, evaluate, failover, fanout, fanout_city, latency, manual, peer, reach, smpp
from warning.bench.harness import CLUSTER_BOOTSTRAP, ROOT, Scenario, local_stack, run
from warning.bench.plot import plot
from warning.config import Settings

SCENARIOS: dict[str, tuple[Scenario, list[tuple[str, str, str]]]] = {
    # name: (run one repetition, [(figure, unit, target)])
    "evaluate": (evaluate.scenario, [("obs_per_s", "obs/s", ">= 20,000 per worker"),
                                     ("obs_per_s_single", "obs/s", "(one reading per message)"),
                                     ("alert_p50_ms", "ms", "produce -> alert, idle"),
                                     ("alert_p99_ms", "ms", "produce -> alert, idle")]),
    "fanout": (fanout.scenario, [("enqueue_s", "s", "<= 10 for 1,000,000 recipients"),
                                 ("drain_per_s", "deliveries/s", ">= 20,000 to local sinks"),
                                 ("aof_rewrites_during_drain", "rewrites", "Redis AOF rewrites overlapping it"),
                                 ("handoff_p50_s", "s", "alert issued -> 50 % handed off"),
                                 ("handoff_p90_s", "s", "-> 90 %"),
                                 ("handoff_p99_s", "s", "-> 99 %"),
                                 ("redis_bytes_per_job", "bytes", "Redis memory per queued job"),
                                 ("import_s", "s", "1,000,000 residents imported")]),
    "fanout-city": (fanout_city.scenario, [
        ("enqueue_s", "s", "<= 4: 1,000,000 residents queued, 2 workers"),
        ("first_handoff_ms", "ms", "as a 10,000-person alert's (reach first_p50_ms)"),
        ("all50_s", "s", "-> 50 % handed off"),
        ("all90_s", "s", "-> 90 %"),
        ("all99_s", "s", "<= 25: -> 99 %"),
        ("bytes_per_job", "bytes", "Redis memory per resident when all are queued"),
        ("worker_partition_blocked_ms", "ms", "the owning partition's next alert: produce -> fanned out"),
        ("city_step_ms", "ms", "the city alert: produce -> its units published"),
        ("enqueue_s_5m", "s", "5,000,000 residents queued"),
        ("first_handoff_ms_5m", "ms", "5,000,000: first handoff"),
        ("all99_s_5m", "s", "5,000,000: -> 99 %"),
        ("worker_partition_blocked_ms_5m", "ms", "5,000,000: the owning partition's next alert"),
        ("enqueue_s_cluster", "s", "1,000,000 on the local Redis Cluster (WARNING_BENCH_CITY_CLUSTER=1)"),
        ("all99_s_cluster", "s", "the same: -> 99 %")]),
    "reach": (reach.scenario, [("first_p50_ms", "ms", "<= 100: crossing -> first handoff, 5,000 obs/s load"),
                               ("first_p99_ms", "ms", "<= 500"),
                               ("all99_p50_s", "s", "crossing -> 99 % of 10,000 recipients")]),
    "latency": (latency.scenario, [("p50_ms", "ms", "reading -> grid webhook at 20/s"),
                                   ("p99_ms", "ms", "reading -> grid webhook, p99"),
                                   ("floor_p50_ms", "ms", "the same hops, no work (Kafka, Redis, POST)"),
                                   ("floor_p99_ms", "ms", "floor: below it no pipeline gets"),
                                   ("p99_over_floor", "x", "<= 1.5: p99 over the floor's, same run")]),
    "peer": (peer.scenario, [("ours_per_s", "alerts/s", ">= 0.5x Alertmanager, then 1x"),
                             ("peer_per_s", "alerts/s", "Alertmanager 0.25, same burst and sink"),
                             ("throughput_ratio", "x", ">= 0.5"),
                             ("webhook_ceiling_per_s", "posts/s", "one Python poster alone, same sink"),
                             ("target_over_ceiling", "x", "4x Alertmanager / ceiling (> 1: out of reach)"),
                             ("ours_p99_ms", "ms", "<= 1/2 of Alertmanager's"),
                             ("peer_p99_ms", "ms", "Alertmanager"),
                             ("p99_ratio", "x", "<= 0.5"),
                             ("ours_cpu_us_per_alert", "us", "<= 750: CPU per alert, the four below"),
                             ("ours_cpu_us_worker", "us", "of which the Faust worker"),
                             ("ours_cpu_us_consumers", "us", "the two grid consumers"),
                             ("ours_cpu_us_redis", "us", "Redis"),
                             ("ours_cpu_us_kafka", "us", "Kafka"),
                             ("peer_cpu_us_per_alert", "us", "Alertmanager's CPU per alert"),
                             ("cpu_ratio", "x", "<= 2.6: ours over Alertmanager's, same run"),
                             ("sink_cpu_us_per_post", "us", "the shared sink's CPU per webhook"),
                             ("target_cpu_budget_us", "us", "host CPU per alert at 4x Alertmanager, less the sink")]),
    "peer-ours": (peer.ours_only, [("ours_per_s", "alerts/s", "our side of the peer burst alone (A/B runs)"),
                                   ("ours_cpu_us_per_alert", "us", "CPU per alert, all four below"),
                                   ("ours_cpu_us_worker", "us", "the Faust worker"),
                                   ("ours_cpu_us_consumers", "us", "the two grid consumers"),
                                   ("ours_cpu_us_redis", "us", "Redis"),
                                   ("ours_cpu_us_kafka", "us", "Kafka")]),
    "manual": (manual.scenario, [("issue_p50_ms", "ms", "<= 50: officer's POST -> first provider handoff"),
                                 ("issue_p99_ms", "ms", "<= 200"),
                                 ("approval_p50_ms", "ms", "<= 50: approval's POST -> first resident handoff"),
                                 ("approval_p99_ms", "ms", "<= 200")]),
    "smpp": (smpp.scenario, [("per_s_window10", "SMS/s", "one gateway, window 10, to the sandbox SMSC"),
                             ("per_s_window50", "SMS/s", "window 50"),
                             ("all99_s", "s", "100,000 over three gateways: 99 % handed off"),
                             ("all50_s", "s", "50 % handed off"),
                             ("city_per_s", "SMS/s", "the three gateways together")]),
    "failover": (failover.scenario, [("failover_no_standby_s", "s", "worker kill -9 -> every partition dispatching"),
                                     ("failover_standby_s", "s", "the same with a standby table"),
                                     ("changelog_entries", "records", "station-windows changelog replayed"),
                                     ("fill_s", "s", "1,000,000 readings evaluated into it")]),
    "chaos": (chaos.scenario, [("lost", "deliveries", "0 of 100,000"),
                               ("duplicates", "deliveries", "0 sent twice"),
                               ("recover_s", "s", "longest stall in arrivals"),
                               ("worker_recover_s", "s", "restarted worker -> next alert"),
                               ("worker_stalled", "runs", "restarted worker never dispatched (0)"),
                               ("broker_kill_lost", "deliveries", "0: a broker kill -9'd, started 30 s later"),
                               ("broker_kill_duplicates", "deliveries", "0"),
                               ("broker_kill_stall_s", "s", "<= 10: longest stall in arrivals"),
                               ("broker_kill_recover_s", "s", "kill -> first alert produced after it"),
                               ("leader_kill_lost", "deliveries", "0: the quorum leader kill -9'd"),
                               ("leader_kill_duplicates", "deliveries", "0"),
                               ("leader_kill_stall_s", "s", "<= 10"),
                               ("leader_kill_recover_s", "s", "kill -> first alert produced after it"),
                               ("master_kill_lost", "deliveries", "0: a Redis Cluster master kill -9'd, "
                                                                  "its replica promoted"),
                               ("master_kill_duplicates", "deliveries", "0"),
                               ("master_kill_stall_s", "s", "longest stall in arrivals"),
                               ("wait_cost_pct", "%", "cluster drain time with WAIT per master, over without"),
                               ("sentinel_kill_lost", "deliveries", "0: the Sentinel's master kill -9'd"),
                               ("sentinel_kill_duplicates", "deliveries", "0"),
                               ("sentinel_kill_stall_s", "s", "longest stall in arrivals")]),
}


ON_DEMAND = {"peer-ours"}  # not part of `make bench`: `peer` measures the same and more


def on_cluster(base: Settings) -> Settings:
    """The local 3-node Kafka cluster (started if it does not answer) with production replication."""
    os.environ["WARNING_KAFKA_BOOTSTRAP"] = CLUSTER_BOOTSTRAP  # what deploy/local/stack.py starts and checks
    return base.model_copy(update={"kafka_bootstrap": CLUSTER_BOOTSTRAP, "replication_factor": 3,
                                   "min_insync_replicas": 2, "table_standby_replicas": 1})


def run_scenarios(base: Settings, which: str, repeats: int, save: bool) -> list[dict[str, Any]]:
    names = [n for n in SCENARIOS if n not in ON_DEMAND] if which == "all" else [which]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario {unknown[0]!r}; one of: {', '.join(SCENARIOS)}, all")
    console = Console(stderr=True)
    # The bench's own probes open and close many Kafka clients; kafka-python reports the
    # expected ("group_id is None") and a harmless close race at length. Figures matter here.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    results = []
    with local_stack():
        for name in names:
            with console.status(f"scenario {name}: {repeats} run(s)…"):
                results.append(run(name, SCENARIOS[name][0], base, repeats))
    table = Table("scenario", "figure", "median", "min", "max", "unit", "target", title="warning bench")
    for result in results:
        for figure, unit, target in SCENARIOS[result["scenario"]][1]:
            table.add_row(result["scenario"], figure, str(result.get(figure)), str(result.get(f"{figure}_min")),
                          str(result.get(f"{figure}_max")), unit, target)
    console.print(table)
    if save:
        out = ROOT / "bench" / "results"
        out.mkdir(parents=True, exist_ok=True)
        ran = {r["scenario"]: r for r in results}
        (out / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json").write_bytes(
            orjson.dumps(ran, option=orjson.OPT_INDENT_2))
        latest = out / "latest.json"  # one scenario run again replaces its own entry (each says when, "at")
        kept = orjson.loads(latest.read_bytes()) if which != "all" and latest.exists() else {}
        merged = {**kept, **ran}
        latest.write_bytes(orjson.dumps(merged, option=orjson.OPT_INDENT_2))
        png = plot(merged, out / "latency.png")
        if png:
            console.print(f"plot: {png}")
        console.print(f"results: {out / 'latest.json'}")
    return results
