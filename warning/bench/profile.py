"""Where a measured stretch's CPU went, process by process: py-spy sampling the bench's own
processes while the burst runs, when ``WARNING_BENCH_PROFILE`` names a directory.

Each process gets ``<name>.txt`` (py-spy's collapsed stacks, one ``frame;frame;… count``
line per stack; feed it to any flamegraph tool) and the bench prints the frames that held
the most samples on their own (self time) and the functions of ours under which the most
samples fell (inclusive), so a profile-led change can start from the table. py-spy samples
without pausing the process (``--nonblocking``): the figures beside it stay comparable.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import TracebackType

RATE_HZ = 250
OURS = ("warning/", "consumers/")
_LIBRARY = re.compile(r"^.*(site-packages/|/lib/python3\.\d+/)")
_OURS = re.compile(r"(?:^|/)((?:warning|consumers)/)")


def directory() -> Path | None:
    raw = os.environ.get("WARNING_BENCH_PROFILE", "")
    return Path(raw) if raw else None


def _py_spy() -> str:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else (shutil.which("py-spy") or "py-spy")


class Profiles:
    """``with Profiles({"worker": pid, ...}):`` records each while the block runs (no-op unless
    WARNING_BENCH_PROFILE is set)."""

    def __init__(self, pids: dict[str, int], label: str) -> None:
        self.pids = pids
        self.out = (d / label) if (d := directory()) else None
        self._spies: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> Profiles:
        if self.out is None:
            return self
        self.out.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            self._spies[name] = subprocess.Popen(
                [_py_spy(), "record", "--pid", str(pid), "--rate", str(RATE_HZ), "--nonblocking", "--format", "raw",
                 "--output", str(self.out / f"{name}.txt")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for spy in self._spies.values():
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        for spy in self._spies.values():
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
        if self.out is not None and kind is None:
            for name in self._spies:
                if (path := self.out / f"{name}.txt").exists():
                    print(summary(name, path), file=sys.stderr)


def read(path: Path) -> Counter[tuple[str, ...]]:
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks[tuple(frames.split(";"))] += int(count)
    return stacks


def _short(frame: str) -> str:
    """``fn (path/to/site-packages/pkg/mod.py:12)`` → ``fn (pkg/mod.py)``."""
    name, _, where = frame.partition(" (")
    where = _LIBRARY.sub("", where.rstrip(")").rsplit(":", 1)[0])
    if (ours := _OURS.search(where)) is not None:
        where = where[ours.start(1):]
    return f"{name} ({where})"


def top(stacks: Counter[tuple[str, ...]], n: int = 15) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """The frames with the most self samples, and our functions with the most samples under them
    (each a share of all samples, %)."""
    total = sum(stacks.values()) or 1
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    for frames, count in stacks.items():
        if frames:
            own[_short(frames[-1])] += count
        for frame in {_short(f) for f in frames if any(o in f for o in OURS)}:
            under[frame] += count
    return ([(f, round(100 * c / total, 1)) for f, c in own.most_common(n)],
            [(f, round(100 * c / total, 1)) for f, c in under.most_common(n)])


def summary(name: str, path: Path) -> str:
    stacks = read(path)
    own, under = top(stacks)
    lines = [f"profile {name}: {sum(stacks.values())} samples ({path})", "  self:"]
    lines += [f"    {pct:5.1f}%  {frame}" for frame, pct in own]
    lines += ["  under our functions:"] + [f"    {pct:5.1f}%  {frame}" for frame, pct in under]
    return "\n".join(lines)
