"""Evaluate's write-back cache: dirty station windows, the readings they cover, and when
those readings may be acknowledged.

The way Kafka Streams' record cache works: a station's window is updated in memory and
written to the changelog once per flush, and only once Kafka has acknowledged the
flush's windows are the messages it covers acknowledged (so committed). A crash before
that re-delivers them, and a reading delivered twice replaces itself, so the replay
rebuilds exactly the lost state.

A flush detaches its windows and messages at once (the agent's next readings start the
next flush), hands the windows to the producer in flush order, and leaves waiting for
Kafka to a task of its own, so neither the agent nor the timer waits a round trip. A
partition revoked meanwhile is not acknowledged by the old owner: the new one replays it.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import structlog
from faust.types import TP

log = structlog.get_logger()

Window = dict[str, Any]
# (partition, station id, window) -> Kafka's acknowledgement, once the record is handed over
Write = Callable[[int, str, Window], Awaitable[Awaitable[Any]]]


class Acknowledgeable(Protocol):
    def ack(self) -> bool: ...


class WriteBack:
    def __init__(self, write: Write, on_failure: Callable[[BaseException], Awaitable[None]]) -> None:
        self.write = write
        self.on_failure = on_failure
        self.dirty: dict[TP, dict[str, Window]] = defaultdict(dict)
        self.pending: dict[TP, list[Acknowledgeable]] = defaultdict(list)
        self.flushed_at: dict[TP, float] = {}
        self.generation: dict[TP, int] = defaultdict(int)  # bumped when a partition leaves
        self.in_flight: set[asyncio.Task[None]] = set()
        self._in_order = asyncio.Lock()  # FIFO: flushes reach the producer in the order taken

    def due(self, every_s: float) -> list[TP]:
        """Partitions holding messages whose last flush is ``every_s`` old."""
        now = time.monotonic()
        return [tp for tp, events in self.pending.items()
                if events and now - self.flushed_at.get(tp, 0.0) >= every_s]

    async def flush(self, tp: TP) -> None:
        # Copied and cleared, not replaced: the agent may hold the dict across an await.
        windows, events = dict(self.dirty[tp]), list(self.pending[tp])
        self.dirty[tp].clear()
        self.pending[tp].clear()
        self.flushed_at[tp] = time.monotonic()
        if not windows and not events:
            return
        generation = self.generation[tp]
        async with self._in_order:  # a later flush of the same station must land later
            written = [await self.write(tp.partition, station_id, window) for station_id, window in windows.items()]
        task = asyncio.ensure_future(self._acknowledge(tp, generation, events, written))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def _acknowledge(self, tp: TP, generation: int, events: list[Acknowledgeable],
                           written: list[Awaitable[Any]]) -> None:
        try:
            await asyncio.gather(*written)
        except Exception as exc:  # any failure: nothing acknowledged, and the worker restarts
            log.error("station_windows_not_written", topic=tp.topic, partition=tp.partition,
                      windows=len(written), messages=len(events), error=repr(exc))
            await self.on_failure(exc)
            return
        if self.generation[tp] != generation:
            return  # revoked meanwhile: its new owner replays these messages
        for event in events:
            event.ack()

    def forget(self, partitions: Iterable[TP]) -> None:
        """Partitions moved to another worker: it replays their unacknowledged messages."""
        for tp in partitions:
            self.generation[tp] += 1
            self.dirty[tp].clear()
            self.pending[tp].clear()

    async def settle(self, timeout_s: float) -> None:
        """Wait (bounded) for flushes already handed over, so a partition's next owner
        recovers their windows from the changelog rather than replaying them."""
        if self.in_flight:
            await asyncio.wait(set(self.in_flight), timeout=timeout_s)
