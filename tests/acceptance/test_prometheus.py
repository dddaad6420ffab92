"""A real Prometheus (Debian's) scraping a running pipeline with the project's scrape config
and alerting rules: after an alert, PromQL over Prometheus's HTTP API returns the deliveries
per channel that reached the sinks and the lag rule is inactive; then a stopped worker with
readings waiting makes the lag alert go pending, then firing, in Prometheus itself. The
rules' windows are shortened for the test (20 s instead of 5 min), nothing else."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from consumers.sinks import read_sink
from tests.acceptance.conftest import cli, logs
from tests.conftest import ROOT, wait_for
from warning.config import Settings
from warning.runner import Processes, free_port

pytestmark = pytest.mark.integration


def fast_rules(target: Path) -> Path:
    """The shipped rules with their windows and waits shortened, so the test takes seconds."""
    text = (ROOT / "deploy/prometheus/alerts.yml").read_text()
    text = re.sub(r"\[(5|10)m\]", "[20s]", text)
    text = re.sub(r"for: \d+m", "for: 5s", text)
    target.write_text(text)
    return target


@pytest.fixture
def prometheus(settings: Settings, pipeline: Processes, tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus")
    assert binary, "Debian's prometheus is missing: `make test` installs it (deploy/local/stack.py tools)"
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(fast_rules(tmp_path / "alerts.yml"))]
    config["scrape_configs"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{settings.api_port}"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with (tmp_path / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen([binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(url), 30, "Prometheus ready", lambda: (tmp_path / "prometheus.log").read_text()[-2000:])
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def query(url: str, promql: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def lag_alert(url: str) -> dict[str, Any]:
    rules = httpx.get(f"{url}/api/v1/rules", params={"type": "alert"}, timeout=10).json()["data"]["groups"]
    rule: dict[str, Any] = next(r for g in rules for r in g["rules"] if r["name"] == "WarningWorkerLagNotFalling")
    return rule


def reading(settings: Settings, tmp_path: Path, value: float, seconds: float, station: str = "GAS-NT-001") -> None:
    feed = tmp_path / f"{station}-{seconds}.jsonl"
    at = datetime.now(UTC) + timedelta(seconds=seconds)
    feed.write_bytes(orjson.dumps({"station_id": station, "kind": "gas_lel", "value": value, "unit": "%LEL",
                                   "observed_at": at.isoformat()}) + b"\n")
    assert cli(settings, "feed", "push", str(feed)).returncode == 0


def test_prometheus_counts_the_deliveries_and_fires_the_lag_alert(
        settings: Settings, pipeline: Processes, prometheus: str, tmp_path: Path) -> None:
    reading(settings, tmp_path, 62.0, 0)
    # the red gas alert's recipients in the demo directory, and its area's cells in two languages
    expected = {"sms": 5, "push": 4, "grid": 2, "cell_broadcast": 2}

    def sinks() -> Counter[str]:
        return Counter({ch: len(read_sink(settings.sink_dir / f"{ch}.jsonl")) for ch in expected})

    wait_for(lambda: sinks() == Counter(expected), 90, "the alert at every sink", lambda: logs(tmp_path))
    promql = 'sum by (channel) (warning_deliveries_total{status="sent", drill="false"})'

    def counted() -> dict[str, int]:
        return {r["metric"]["channel"]: int(float(r["value"][1])) for r in query(prometheus, promql)}

    wait_for(lambda: counted() == expected, 30, "Prometheus to scrape the deliveries", counted)
    assert query(prometheus, 'up{job="warning-api"}')[0]["value"][1] == "1"

    def drained() -> bool:  # the worker committed all it took (evaluate acknowledges after each flush)
        lag = query(prometheus, "sum(warning_pipeline_lag_messages)")
        return bool(lag) and lag[0]["value"][1] == "0" and lag_alert(prometheus)["state"] == "inactive"

    wait_for(drained, 60, "the lag rule inactive after the alert",
             lambda: (lag_alert(prometheus)["state"], query(prometheus, "warning_pipeline_lag_messages")))
    every_role = {"worker": "1", "consumer-sms": "1", "consumer-push": "1", "consumer-grid": "1",
                  "consumer-cell_broadcast": "1", "escalator": "1"}

    def alive() -> dict[str, str]:
        return {r["metric"]["role"]: r["value"][1] for r in query(prometheus, "warning_processes_alive")}

    wait_for(lambda: alive() == every_role, 30, "a heartbeat of every role", alive)
    modes = query(prometheus, "warning_provider_mode == 1")
    assert {(r["metric"]["channel"], r["metric"]["mode"]) for r in modes} == {
        ("sms", "sink"), ("push", "sink"), ("grid", "sink"), ("cell_broadcast", "sink")}
    for role in ("worker", "consumer-sms", "escalator"):  # the orchestrator's probes
        probe = cli(settings, "health", role, "--ready")
        assert probe.returncode == 0 and probe.stdout.startswith(f"healthy: {role} "), probe

    wait_for(drained, 30, "still no lag before the worker stops")
    pipeline.kill("worker")  # up to now it took everything; now readings wait for nobody
    for k in range(3):
        reading(settings, tmp_path, 5.0 + k, 10 + k, station=f"GAS-X-{k}")
    states: list[str] = []

    def fired() -> bool:
        state = lag_alert(prometheus)["state"]
        if not states or states[-1] != state:
            states.append(state)
        return state == "firing"

    wait_for(fired, 120, "the lag alert to fire", lambda: (states, query(prometheus, "warning_pipeline_lag_messages")))
    assert states == ["inactive", "pending", "firing"]
    firing = httpx.get(f"{prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    lagging = [a for a in firing if a["labels"]["alertname"] == "WarningWorkerLagNotFalling"]
    assert {a["labels"]["topic"] for a in lagging} == {f"{settings.topic_prefix}feeds.observations"}
    assert lagging[0]["annotations"]["runbook"] == "docs/runbook.md#warningworkerlagnotfalling"
