"""The restart policy of `warning run`, on a fake set of processes and a controlled clock."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from warning.supervise import Backoff, Supervisor


class FakeProcesses:
    """Processes that die when told to and record every restart."""

    def __init__(self, names: list[str]) -> None:
        self.log_dir = Path("/logs")
        self.codes: dict[str, int | None] = dict.fromkeys(names)
        self.restarts: list[str] = []

    def die(self, name: str, code: int) -> None:
        self.codes[name] = code

    def dead(self) -> list[str]:
        return [name for name, code in self.codes.items() if code is not None]

    def exit_code(self, name: str) -> int | None:
        return self.codes[name]

    def restart(self, name: str) -> int:
        self.codes[name] = None
        self.restarts.append(name)
        return 1000 + len(self.restarts)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world() -> tuple[FakeProcesses, Clock, Supervisor]:
    procs, clock = FakeProcesses(["worker", "consumer-sms"]), Clock()
    return procs, clock, Supervisor(procs, Backoff(1.0, 30.0, 60.0), clock)


def test_a_killed_worker_is_restarted_after_the_first_delay_and_reported(
        world: tuple[FakeProcesses, Clock, Supervisor]) -> None:
    procs, clock, supervisor = world
    clock.now = 120.0
    procs.die("worker", -signal.SIGKILL)
    assert supervisor.check() == [
        "worker killed by SIGKILL after 120.0s; restarting in 1s (crash 1 in a row; log /logs/worker.log)"]
    clock.now = 120.9
    assert supervisor.check() == [] and procs.restarts == []  # not due yet, and not reported twice
    clock.now = 121.0
    assert supervisor.check() == ["worker restarted (pid 1001)"]
    assert procs.restarts == ["worker"] and procs.dead() == []


def test_crashes_soon_after_a_start_back_off_to_the_cap_and_a_healthy_run_resets_it(
        world: tuple[FakeProcesses, Clock, Supervisor]) -> None:
    procs, clock, supervisor = world
    delays = []
    for _ in range(7):  # each start dies 5 s in: a crash loop
        clock.now += 5.0
        procs.die("consumer-sms", 1)
        (said,) = supervisor.check()
        assert said.startswith("consumer-sms exited with code 1 after 5.0s; restarting in ")
        delays.append(float(said.split("restarting in ")[1].split("s ")[0]))
        clock.now += delays[-1]
        assert supervisor.check() == [f"consumer-sms restarted (pid {1000 + len(delays)})"]
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    clock.now += 60.0  # then it stays up a minute: the next crash starts the count again
    procs.die("consumer-sms", 1)
    assert "restarting in 1s (crash 1 in a row" in supervisor.check()[0]
    assert procs.restarts == ["consumer-sms"] * 7


def test_each_process_has_its_own_count_and_both_restart_when_due(
        world: tuple[FakeProcesses, Clock, Supervisor]) -> None:
    procs, clock, supervisor = world
    clock.now = 10.0
    procs.die("worker", 1)
    supervisor.check()
    clock.now = 11.0
    supervisor.check()  # worker restarted at 11
    clock.now = 12.0
    procs.die("worker", 1)  # again 1 s after its restart: 2nd in a row
    procs.die("consumer-sms", -signal.SIGTERM)  # its first
    said = supervisor.check()
    assert [line.split(";")[0] for line in said] == ["worker exited with code 1 after 1.0s",
                                                     "consumer-sms killed by SIGTERM after 12.0s"]
    assert "restarting in 2s (crash 2 in a row" in said[0] and "restarting in 1s (crash 1 in a row" in said[1]
    clock.now = 14.0
    assert sorted(supervisor.check()) == ["consumer-sms restarted (pid 1002)", "worker restarted (pid 1003)"]
