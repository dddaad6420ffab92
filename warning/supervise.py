"""`warning run` keeps serving: a pipeline process that exits is started again, with backoff.

Every process is restart-safe by design — the worker recovers its tables from their
changelogs and resumes from its group's committed offsets, a consumer's unacknowledged
jobs are reclaimed after the visibility timeout, escalation timers live in Redis — so a
crash costs the restart's time (~10 s for the worker in the chaos bench), not a warning.

A process that dies soon after its start waits longer each time (1, 2, 4 … 30 s), so a
crash loop (Redis gone, a revoked credential) neither spins nor floods the console; one
that stayed up for a minute is started again after the first delay. It never gives up:
an early-warning pipeline that stops trying is worse than one that keeps saying why it
fails (each exit is reported with its code and log file).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class Supervised(Protocol):
    """What the supervisor needs of the processes it watches (runner.Processes)."""

    log_dir: Path

    def dead(self) -> list[str]: ...

    def exit_code(self, name: str) -> int | None: ...

    def restart(self, name: str) -> int: ...


@dataclass(frozen=True)
class Backoff:
    first_s: float = 1.0
    max_s: float = 30.0
    healthy_after_s: float = 60.0  # up this long: its next crash is not "in a row"

    def delay(self, crashes_in_a_row: int) -> float:
        return min(self.first_s * 2.0 ** (crashes_in_a_row - 1), self.max_s)


def describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


class Supervisor:
    """Call :meth:`check` every so often; it restarts what is due and says what it did."""

    def __init__(self, procs: Supervised, backoff: Backoff = Backoff(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.procs = procs
        self.backoff = backoff
        self.clock = clock
        self.created = clock()  # every process runs from here until its first restart
        self.up_since: dict[str, float] = {}
        self.crashes: dict[str, int] = {}
        self.restart_at: dict[str, float] = {}

    def check(self) -> list[str]:
        now, said = self.clock(), []
        for name in self.procs.dead():
            if name in self.restart_at:
                continue
            ran = now - self.up_since.get(name, self.created)
            streak = 1 if ran >= self.backoff.healthy_after_s else self.crashes.get(name, 0) + 1
            self.crashes[name] = streak
            delay = self.backoff.delay(streak)
            self.restart_at[name] = now + delay
            said.append(f"{name} {describe_exit(self.procs.exit_code(name))} after {ran:.1f}s; restarting in "
                        f"{delay:g}s (crash {streak} in a row; log {self.procs.log_dir / f'{name}.log'})")
        for name, at in sorted(self.restart_at.items()):
            if at <= now:
                del self.restart_at[name]
                pid = self.procs.restart(name)
                self.up_since[name] = now
                said.append(f"{name} restarted (pid {pid})")
        return said
