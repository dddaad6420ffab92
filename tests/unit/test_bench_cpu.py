"""The bench's CPU meter reads what each process really used (from /proc)."""

from __future__ import annotations

import subprocess
import sys

from warning.bench.cpu import CpuMeter, cpu_s


def test_a_busy_process_shows_its_cpu_and_an_idle_one_none() -> None:
    spin = "import time\ninput()\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\n"
    idle = subprocess.Popen(["sleep", "5"])
    busy = subprocess.Popen([sys.executable, "-c", f"{spin}print('spun', flush=True)\ninput()"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert busy.stdin is not None and busy.stdout is not None
    try:
        with CpuMeter({"busy": [busy.pid], "idle": [idle.pid]}) as meter:
            busy.stdin.write("go\n")
            busy.stdin.flush()
            assert busy.stdout.readline() == "spun\n"  # and now it waits, alive: /proc still has it
        assert 0.35 <= meter.used["busy"] <= 0.6 and meter.used["idle"] < 0.02
        per = meter.us_per(1000)
        assert 350 <= per["busy"] <= 600 and per["idle"] < 20
        assert 0 < meter.host_busy_pct <= 100
    finally:
        busy.kill(), idle.kill()
        busy.wait(), idle.wait()


def test_a_process_that_is_gone_counts_zero() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert cpu_s(gone.pid) == 0.0
