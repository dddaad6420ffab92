"""What the chaos scenario reports about a restarted worker that never dispatches."""

from __future__ import annotations

import subprocess
import sys

import pytest

from warning.bench.chaos import thread_stacks

pytestmark = pytest.mark.integration


def test_a_stalled_workers_report_shows_where_each_of_its_threads_waits() -> None:
    """What the chaos scenario records when a restarted worker never dispatches (py-spy)."""
    code = "import threading, time\nthreading.Thread(target=time.sleep, args=(60,), name='waiter').start()\n" \
           "print('ready', flush=True)\ntime.sleep(60)\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        stacks = thread_stacks(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    assert f"Process {proc.pid}" in stacks
    assert '"MainThread"' in stacks and '"waiter"' in stacks
