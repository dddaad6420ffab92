"""A Faust worker that lands the restarted-worker race every time (run as ``python -m``).

The race (~1 chaos run in 40): at the end of its recovery a worker resumes its stream
partitions, then seeks them to their committed offsets (an await, with the fetcher
running), then resumes flow control, which clears every agent's queue. An event the fetcher
handed to an agent inside that await, not yet taken, is cleared; the consumer's position is
already past it, so it is never evaluated. Without a committed offset nothing seeks back.

Injected here, without touching the order under test: the seek holds until the fetcher has
put an event in an agent's queue (then 0.3 s more for the rest of its fetch; 5 s at most),
and while it holds, agents take nothing from their queues (as if busy). Agents look at
their queues every 50 ms instead of being woken by each event.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from faust.transport.consumer import Consumer
from mode.utils.queues import ThrowableQueue

SEEK_HOLD_S = 5.0
REST_OF_FETCH_S = 0.3
TAKE_EVERY_S = 0.05

_perform_seek = Consumer.perform_seek
holding = False


async def perform_seek(self: Any) -> None:
    global holding
    holding = True
    try:
        await _perform_seek(self)
        channels = list(self.app.topics._topics)
        deadline = time.monotonic() + SEEK_HOLD_S
        while time.monotonic() < deadline and all(ch.queue.empty() for ch in channels):
            await asyncio.sleep(0.01)
        queued = not all(ch.queue.empty() for ch in channels)
        if queued:
            await asyncio.sleep(REST_OF_FETCH_S)
        print(f"racing_worker: events queued while the seek held: {queued}", file=sys.stderr, flush=True)
    finally:
        holding = False


async def busy_get(self: Any) -> Any:
    while holding or self.empty():
        await asyncio.sleep(TAKE_EVERY_S)
    return self.get_nowait()


Consumer.perform_seek = perform_seek  # type: ignore[method-assign]
ThrowableQueue.get = busy_get  # type: ignore[method-assign]

if __name__ == "__main__":
    from warning.cli import main

    sys.argv = ["warning", "worker"]
    main()
