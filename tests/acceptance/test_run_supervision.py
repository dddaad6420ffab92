"""`warning run` keeps serving: a pipeline process killed -9 is started again, and a reading
that arrived while it was dead still reaches everyone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from consumers.sinks import read_sink
from tests.acceptance.conftest import cli
from tests.acceptance.test_end_to_end import RED_GAS
from tests.conftest import settings_env, wait_for
from warning.config import Settings

pytestmark = pytest.mark.integration


def child_pid(parent: int, command: str) -> int | None:
    """The pid of ``parent``'s child running ``python -m warning <command>``."""
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue  # not a process, or it exited while we looked
        if ppid == parent and argv[1:4] == [b"-m", b"warning", command.encode()]:
            return int(entry.name)
    return None


def test_a_killed_worker_is_restarted_and_the_reading_sent_while_it_was_dead_reaches_everyone(
        settings: Settings, tmp_path: Path) -> None:
    out = (tmp_path / "run.out").open("wb")
    run = subprocess.Popen([sys.executable, "-m", "warning", "run", "--no-demo"], cwd=tmp_path, stdout=out,
                           stderr=subprocess.STDOUT, env={**os.environ, **settings_env(settings)})

    def said() -> str:
        return (tmp_path / "run.out").read_text()

    def logs() -> str:
        return said() + "".join(f"\n--- {p.name}\n{p.read_text()[-3000:]}"
                                for p in sorted((tmp_path / ".run" / "logs").glob("*.log")))

    try:
        wait_for(lambda: "pipeline serving topics" in said(), 90, "the pipeline to start", logs)
        worker = wait_for(lambda: child_pid(run.pid, "worker"), 10, "the worker process", logs)
        os.kill(worker, signal.SIGKILL)

        now = datetime.now(UTC)  # produced while no worker runs
        reading = {"station_id": "GAS-NT-001", "kind": "gas_lel", "value": 62.0, "unit": "%LEL",
                   "observed_at": now.isoformat(), "lat": 22.541, "lon": 113.918}
        (tmp_path / "feed.jsonl").write_bytes(orjson.dumps(reading) + b"\n")
        assert orjson.loads(cli(settings, "feed", "push", str(tmp_path / "feed.jsonl")).stdout)["readings"] == 1

        restarted = wait_for(lambda: "worker restarted (pid" in said(), 30, "the worker's restart", logs)
        assert restarted
        lines = [line for line in said().splitlines() if line.startswith("worker ")]
        assert lines[0].startswith("worker killed by SIGKILL after ")
        assert lines[0].endswith("restarting in 1s (crash 1 in a row; log .run/logs/worker.log)")
        new_pid = int(lines[1].removeprefix("worker restarted (pid ").rstrip(")"))
        assert new_pid != worker and child_pid(run.pid, "worker") == new_pid

        sinks = settings.sink_dir

        def arrived() -> bool:
            return all(len(read_sink(sinks / f"{ch}.jsonl")) >= len(who) for ch, who in RED_GAS.items())

        wait_for(arrived, 90, "the red alert at every channel sink", logs)
        for channel, expected in RED_GAS.items():
            messages = read_sink(sinks / f"{channel}.jsonl")
            assert Counter(m["recipient"] for m in messages) == Counter(dict.fromkeys(expected, 1)), channel
            assert {(m["tier"], m["version"], m["alert_id"]) for m in messages} == {
                ("red", 1, f"gas-440305001-{now.strftime('%Y%m%dT%H%M%SZ')}")}
        assert [line.split()[0] for line in said().splitlines() if "restarting in" in line] == ["worker"]
    finally:
        run.send_signal(signal.SIGTERM)
        assert run.wait(60) == 130, logs()
        out.close()
    assert child_pid(run.pid, "worker") is None
