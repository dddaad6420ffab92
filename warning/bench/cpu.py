"""CPU time of named processes over a measured stretch, from /proc: what a burst costs,
process by process, so a throughput figure can be read against the host's cores."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from warning.bench.harness import ROOT

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def stack_pid(service: str) -> int | None:
    """The local stack's Kafka or Redis (None when the stack is someone else's)."""
    try:
        pid = int((ROOT / ".run" / service / f"{service}.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def _host_ticks() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)  # (busy, all); idle and iowait are not busy


class CpuMeter:
    """``with CpuMeter({"worker": [pid], ...}) as meter: ...`` then ``meter.us_per(n)``."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.used: dict[str, float] = {}
        self.host_busy_pct = 0.0

    def _sample(self) -> dict[str, float]:
        return {name: sum(cpu_s(pid) for pid in pids) for name, pids in self.groups.items()}

    def __enter__(self) -> CpuMeter:
        self._start, self._host = self._sample(), _host_ticks()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        end, (busy, total) = self._sample(), _host_ticks()
        self.used = {name: end[name] - self._start[name] for name in self.groups}
        self.host_busy_pct = round(100 * (busy - self._host[0]) / max(total - self._host[1], 1), 1)

    def us_per(self, n: int) -> dict[str, float]:
        """CPU microseconds per item, per group."""
        return {name: round(seconds * 1e6 / n, 1) for name, seconds in self.used.items()}
