"""A worker restarted after a kill -9 evaluates every reading waiting for it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.acceptance.conftest import cli, consume_all, read_topic
from tests.conftest import ROOT, seed, settings_env, wait_for
from warning.config import Settings
from warning.feeds import consumer_lag

pytestmark = pytest.mark.integration


def push(settings: Settings, tmp_path: Path, reading: dict[str, Any]) -> None:
    feed = tmp_path / f"{reading['station_id']}.jsonl"
    feed.write_bytes(orjson.dumps({**reading, "observed_at": datetime.now(UTC).isoformat()}) + b"\n")
    assert orjson.loads(cli(settings, "feed", "push", str(feed)).stdout)["readings"] == 1


def worker(settings: Settings, log: Path, module: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", module, *(["worker"] if module == "warning" else [])],
                                cwd=ROOT, env={**os.environ, **settings_env(settings)}, stdout=out,
                                stderr=subprocess.STDOUT)


def test_a_restarted_worker_evaluates_the_reading_waiting_at_the_end_of_its_recovery(
        settings: Settings, tmp_path: Path) -> None:
    """The chaos run's stall, made certain. The first worker issues an alert (so the tables
    have changelog to recover) and is killed -9; a new reading waits in Kafka. The new
    worker's recovery ends while that reading is being fetched: racing_worker.py holds that
    moment open. In Faust's order the reading was put in the agent's queue and cleared there
    before being evaluated, and its partition never committed again."""
    seed(settings)
    log = tmp_path / "worker.log"
    first = worker(settings, log, "warning")
    try:
        push(settings, tmp_path, {"station_id": "GAS-NT-001", "kind": "gas_lel", "value": 62.0, "unit": "%LEL",
                                  "lat": 22.541, "lon": 113.918})
        assert [a["hazard"] for a in consume_all(settings, "warning.alerts", 1, timeout=60)] == ["gas"]
    finally:
        first.kill()
        first.wait(30)
    push(settings, tmp_path, {"station_id": "RAIN-YH-001", "kind": "rainfall", "value": 120.0, "unit": "mm",
                              "period_s": 3600, "lat": 22.524, "lon": 113.941})
    second = worker(settings, log, "tests.acceptance.racing_worker")
    try:
        # The first alert may be published again (a replay re-derives the same version).
        alerts = wait_for(lambda: [a for a in read_topic(settings, "warning.alerts") if a["hazard"] == "rainstorm"],
                          60, "the rainstorm alert")
        # And everything it was handed is done: every input partition commits to its end
        # (a stalled worker's lag never moved).
        wait_for(lambda: sum(consumer_lag(settings).values()) == 0, 60, "no lag on any input topic",
                 lambda: consumer_lag(settings))
    except BaseException:
        print(log.read_text()[-8000:])
        raise
    finally:
        second.terminate()
        second.wait(30)
    assert [(a["area"], a["tier"], a["version"]) for a in alerts] == [("440305002", "red", 1)]
    assert "racing_worker: events queued while the seek held:" in log.read_text()  # the hold ran
