"""Bench helpers for scenarios with residents: a pipeline over grids whose residents are on
push (local sinks), and reading what arrived."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import orjson

from warning import redis_client
from warning.bench import gridworld
from warning.bench.gridworld import BENCH_DIR
from warning.bench.harness import drop_namespace, namespace
from warning.bench.tail import Tail
from warning.config import Settings
from warning.feeds import ensure_topics
from warning.keys import Keys
from warning.runner import Processes, env_for
from warning.targeting.importer import import_recipients, store_grids

T = TypeVar("T")


def people(grids: int, per_grid: int) -> Path:
    path = BENCH_DIR / f"residents-{grids}x{per_grid}.jsonl"
    if not path.exists():
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            for g in range(grids):
                for i in range(per_grid):
                    out.write(orjson.dumps({"id": f"r{g}-{i}", "role": "resident", "push_token": f"tok-{g}-{i}",
                                            "channels": ["push"], "grid": gridworld.grid_id(g)}) + b"\n")
    return path


@contextlib.contextmanager
def resident_pipeline(base: Settings, scenario: str, run: int, grids: int, per_grid: int, consumers: int = 3,
                      log_level: str | None = None, stations: dict[str, str] | None = None,
                      **overrides: object) -> Iterator[tuple[Settings, Processes]]:
    """Grids 0..grids-1 with ``per_grid`` residents each, one spare empty grid; the Faust worker
    and ``consumers`` push consumers writing to local sinks. ``stations``: id -> area."""
    directory = gridworld.directory(f"{scenario}-audience" if stations else "default-audience", stations=stations)
    sinks = BENCH_DIR / f"{scenario}-sinks-{run}"
    for old in sinks.glob("*.jsonl") if sinks.exists() else []:
        old.unlink()
    settings = namespace(base, scenario, run, directory_file=directory, sink_dir=sinks, **overrides)
    ensure_topics(settings)
    client = redis_client.connect_sync(settings.redis_url)
    try:
        keys = Keys(settings.redis_prefix)
        store_grids(client, keys, gridworld.grids(grids + 1), "bench")
        import_recipients(client, keys, people(grids, per_grid))
    finally:
        client.close()
    env = {**env_for(settings), "WARNING_DIRECTORY_FILE": str(directory),
           "WARNING_LOG_LEVEL": log_level or os.environ.get("WARNING_BENCH_LOG_LEVEL", "WARNING"),
           "WARNING_RATE_LIMITS": '{"push": 10000000, "sms": 10000000, "grid": 10000000}'}
    if log_level:  # Faust's own lines too (rebalances, recovery)
        env["WARNING_FAUST_LOG_LEVEL"] = log_level
    logs = BENCH_DIR / "logs" / f"{scenario}{run}"
    shutil.rmtree(logs, ignore_errors=True)  # this run's logs only (processes append: a restart keeps its first life's)
    try:
        with Processes(logs, env=env) as procs:
            procs.start("worker", "worker")
            for i in range(consumers):
                procs.start(f"push-{i}", "consumer", "push")
            yield settings, procs
    finally:
        drop_namespace(settings)


def arrivals(sink: Path) -> dict[str, list[tuple[float, str]]]:
    """(receive time, delivery id) per alert id, in order of arrival."""
    out: dict[str, list[tuple[float, str]]] = defaultdict(list)
    if sink.exists():
        for line in sink.read_bytes().splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                m = orjson.loads(line)
                out[m["alert_id"]].append((float(m["received_at"]), m["delivery_id"]))
    for values in out.values():
        values.sort()
    return out


class SinkLines:
    """Lines a sink has received so far, reading only what was appended since the last call."""

    def __init__(self, sink: Path) -> None:
        self._tail = Tail(sink)
        self._count = 0

    def __call__(self) -> int:
        self._count += self._tail().count(b"\n")
        return self._count


def poll_until(what: str, check: Callable[[], T | None], timeout: float, procs: Processes | None = None,
               every: float = 0.05) -> T:
    """``check()``'s first truthy value, polled; fails naming ``what`` on timeout or when a
    bench process died meanwhile."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if procs is not None and procs.dead():
            raise RuntimeError(f"bench process died waiting for {what}: {procs.dead()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached in {timeout:.0f}s")
        time.sleep(every)
    return found
