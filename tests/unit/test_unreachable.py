"""Commands a person runs, with Kafka and Redis unreachable (nothing listens on their ports):
one line naming the service, the URL, the setting and the fix, exit 2, no traceback, within
a few seconds (the subprocess timeout catches a command that waits its 30 s); replay and CAP
validation need no service at all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data import CAP_CORPUS

DOWN = {"WARNING_REDIS_URL": "redis://127.0.0.1:9/0", "WARNING_KAFKA_BOOTSTRAP": "127.0.0.1:9"}


def warning(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARNING_")}
    return subprocess.run([sys.executable, "-m", "warning", *args], capture_output=True, text=True, timeout=20,
                          env={**env, **DOWN, **(extra or {})})


@pytest.mark.parametrize("args", [["alerts"], ["alerts", "--closed"], ["status", "x"], ["queues"], ["report", "x"],
                                  ["ack", "x", "--by", "off-nt"], ["tokens", "list"], ["silence", "list"],
                                  ["alert", "approve", "x", "--by", "off-ns"], ["cap", "show", "x"]])
def test_redis_down_is_one_line_and_exit_2(args: list[str]) -> None:
    result = warning(*args)
    assert result.returncode == 2, result
    assert result.stdout == "" and "Traceback" not in result.stderr and "╭" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("cannot reach Redis at redis://127.0.0.1:9/0 (WARNING_REDIS_URL): Error 111 connecting")
    assert line.endswith("Start the local stack with `make up`, or set WARNING_REDIS_URL to your Redis. "
                         "(--debug shows the traceback)")


@pytest.mark.parametrize("args", [["topics"], ["feed", "push", "READINGS"]])
def test_kafka_down_is_one_line_and_exit_2(args: list[str], tmp_path: Path) -> None:
    readings = tmp_path / "r.jsonl"
    readings.write_text('{"station_id": "S", "kind": "rainfall", "value": 1, '
                        '"observed_at": "2026-12-01T10:00:00+08:00"}\n')
    result = warning(*[str(readings) if a == "READINGS" else a for a in args])
    assert result.returncode == 2, result
    (line,) = result.stderr.strip().splitlines()
    assert line == ("cannot reach Kafka at 127.0.0.1:9 (WARNING_KAFKA_BOOTSTRAP): KafkaTimeoutError: Unable to "
                    "bootstrap from 127.0.0.1:9. Start the local stack with `make up`, or set "
                    "WARNING_KAFKA_BOOTSTRAP to your brokers. (--debug shows the traceback)")


def test_debug_shows_the_traceback() -> None:
    result = warning("alerts", "--debug")
    assert (result.returncode != 0 and "Traceback" in result.stderr) or "╭" in result.stderr


def test_replay_and_cap_validation_need_no_service(tmp_path: Path) -> None:
    readings = tmp_path / "r.jsonl"
    readings.write_text('{"station_id": "GAS-NT-001", "kind": "gas_lel", "value": 60, "unit": "%LEL", '
                        '"observed_at": "2026-12-01T10:00:00+08:00"}\n')
    replayed = warning("rules", "replay", str(readings))
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == ('{"hazard":"gas","key":"gas:440305001","tier":"red","msg_type":"Alert",'
                               '"at":"2026-12-01T02:00:00+00:00"}\n')
    valid = warning("cap", "validate", str(CAP_CORPUS / "oasis-spec-examples/cap12_appendix_a1.xml"))
    assert valid.returncode == 0 and '"valid":true' in valid.stdout


def test_a_health_probe_says_what_is_down() -> None:
    api = warning("health", "api", extra={"WARNING_API_PORT": "9"})
    assert api.returncode == 1 and api.stdout.startswith("unhealthy: api at http://127.0.0.1:9/healthz does not answer")
    worker = warning("health", "worker")
    assert worker.returncode == 1
    assert worker.stdout.startswith("unhealthy: Redis at redis://127.0.0.1:9/0 (WARNING_REDIS_URL) does not answer")
    assert warning("health", "nonsense").stdout.startswith("unhealthy: unknown role 'nonsense'")
