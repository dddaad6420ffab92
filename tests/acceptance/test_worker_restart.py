"""Readings a worker has fetched survive the end of its recovery and a rebalance (racing_worker.py)."""

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

GAS_NT = {"station_id": "GAS-NT-001", "kind": "gas_lel", "value": 62.0, "unit": "%LEL", "lat": 22.541, "lon": 113.918}


def push(settings: Settings, tmp_path: Path, reading: dict[str, Any]) -> None:
    feed = tmp_path / f"{reading['station_id']}.jsonl"
    feed.write_bytes(orjson.dumps({**reading, "observed_at": datetime.now(UTC).isoformat()}) + b"\n")
    assert orjson.loads(cli(settings, "feed", "push", str(feed)).stdout)["readings"] == 1


def worker(settings: Settings, log: Path, module: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``python -m warning worker``, or the racing worker (racing_worker.py), logging to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", module, *(["worker"] if module == "warning" else [])],
                                cwd=ROOT, env={**os.environ, **settings_env(settings), **(env or {})}, stdout=out,
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
        push(settings, tmp_path, GAS_NT)
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


def test_events_a_rebalance_clears_are_read_again_where_the_group_never_committed(
        settings: Settings, tmp_path: Path) -> None:
    """A second worker joins while the first holds fetched readings in its agents' queues,
    before its group ever committed (a deployment's first seconds). The rebalance clears
    those queues; the new assignment reads them again from the beginning, but the first
    worker's outstanding fetch returned them while its flow was stopped (racing_worker.py)
    and Faust dropped them, past the position, on a partition it does not seek back. Both
    readings must still become alerts."""
    seed(settings)
    hold = tmp_path / "hold"
    hold.touch()
    push(settings, tmp_path, GAS_NT)  # partition 1 of 2
    push(settings, tmp_path, {"station_id": "RAIN-NT-002", "kind": "rainfall", "value": 120.0, "unit": "mm",
                              "period_s": 3600, "lat": 22.545, "lon": 113.921})  # partition 0
    a_log, b_log = tmp_path / "a.log", tmp_path / "b.log"
    env = {"RACING_HOLD_FILE": str(hold), "WARNING_FAUST_LOG_LEVEL": "INFO", "STREAM_RECOVERY_DELAY": "1.5"}
    a = worker(settings, a_log, "tests.acceptance.racing_worker", env)
    b: subprocess.Popen[bytes] | None = None
    try:
        # Both readings (one per partition) are in the first worker's queue, untaken.
        wait_for(lambda: "held events in an agent queue: 2" in a_log.read_text(), 60, "both readings held",
                 lambda: a_log.read_text()[-4000:])
        b = worker(settings, b_log, "warning", {"WARNING_FAUST_LOG_LEVEL": "INFO"})
        wait_for(lambda: a_log.read_text().count("Worker ready") == 2 and "Worker ready" in b_log.read_text(),
                 90, "the rebalance done on both workers", lambda: a_log.read_text()[-4000:])
        hold.unlink()
        want = {"gas:440305001", "rainstorm:440305001"}
        wait_for(lambda: {a["key"] for a in read_topic(settings, "warning.alerts")} >= want, 60,
                 "an alert for each reading", lambda: read_topic(settings, "warning.alerts"))
        assert {a["key"] for a in read_topic(settings, "warning.alerts")} == want
        wait_for(lambda: sum(consumer_lag(settings).values()) == 0, 60, "no lag on any input topic",
                 lambda: consumer_lag(settings))
    except BaseException:
        print("first:", a_log.read_text()[-8000:])
        print("second:", b_log.read_text()[-8000:] if b_log.exists() else "")
        raise
    finally:
        for proc in (a, b):
            if proc is not None:
                proc.terminate()
                proc.wait(30)
