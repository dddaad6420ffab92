"""A Faust worker that lands a recovery race every time (run as ``python -m``).

Faust clears its agents' queues at the end of a recovery and at a rebalance, dropping the
events a worker had fetched into them. Each injection here makes one of those moments
certain, without touching the order under test:

- default: at the end of its recovery a worker resumed its stream partitions, awaited the
  seek to their committed offsets, then cleared the agents' queues. An event fetched during
  that await was cleared before an agent took it, past the consumer's position (~1 chaos
  run in 40; fixed in warning/faust_recovery.py). Injected: the seek holds until the
  fetcher has put an event in an agent's queue (then 0.3 s more for the rest of its fetch;
  5 s at most), and agents take nothing while it holds.
- ``RACING_HOLD_FILE`` set: agents take nothing while that file exists (as if busy), so
  the worker's fetcher idles in a fetch that waits for new records, and a rebalance starts
  with that fetch outstanding. Every partition is paused during a rebalance, and aiokafka
  read Faust's then empty filter as none: the outstanding fetch returned the first records
  fetched again for the new assignment, Faust dropped them (flow stopped) and sought back
  only partitions with a committed offset. Faust's ``STREAM_RECOVERY_DELAY`` (set by the
  test) keeps the flow stopped long enough for that to happen every time.

Agents look at their queues every 50 ms instead of being woken by each event.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

from faust.transport.consumer import Consumer
from mode.utils.queues import ThrowableQueue

SEEK_HOLD_S = 5.0
REST_OF_FETCH_S = 0.3
TAKE_EVERY_S = 0.05

_perform_seek = Consumer.perform_seek
hold_file = Path(os.environ["RACING_HOLD_FILE"]) if os.environ.get("RACING_HOLD_FILE") else None
seek_holding = False
reported: set[int] = set()


def say(line: str) -> None:
    print(f"racing_worker: {line}", file=sys.stderr, flush=True)


async def perform_seek(self: Any) -> None:
    global seek_holding
    seek_holding = True
    try:
        await _perform_seek(self)
        channels = list(self.app.topics._topics)
        deadline = time.monotonic() + SEEK_HOLD_S
        while time.monotonic() < deadline and all(ch.queue.empty() for ch in channels):
            await asyncio.sleep(0.01)
        queued = not all(ch.queue.empty() for ch in channels)
        if queued:
            await asyncio.sleep(REST_OF_FETCH_S)
        say(f"events queued while the seek held: {queued}")
    finally:
        seek_holding = False


async def busy_get(self: Any) -> Any:
    while seek_holding or self.empty() or (hold_file is not None and hold_file.exists()):
        if hold_file is not None and self.qsize() not in reported:
            reported.add(self.qsize())
            say(f"held events in an agent queue: {self.qsize()}")
        await asyncio.sleep(TAKE_EVERY_S)
    return self.get_nowait()


if hold_file is None:
    Consumer.perform_seek = perform_seek  # type: ignore[method-assign]
ThrowableQueue.get = busy_get  # type: ignore[method-assign]

if __name__ == "__main__":
    from warning.cli import main

    sys.argv = ["warning", "worker"]
    main()
