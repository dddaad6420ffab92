"""Which asyncio event loop the long-running processes run on (``WARNING_EVENT_LOOP``).

uvloop (libuv, in C) by default: the worker and the channel consumers are socket-bound
loops — Kafka fetches and produces, Redis round trips, provider HTTP — and uvloop's
transports and callbacks cost less CPU per round trip than the pure-Python selector loop
(see README *Performance* for what it measured). ``asyncio`` keeps the standard loop, for a
platform without uvloop wheels or to rule the loop out when chasing a fault.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

EventLoop = Literal["uvloop", "asyncio"]
T = TypeVar("T")


def use(loop: EventLoop) -> None:
    """Make ``loop`` the policy for every loop created from now on in this process (Faust's
    worker creates its own, so this comes before the app is built)."""
    if loop == "uvloop":
        import uvloop

        from warning import kafka_closed_write

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        kafka_closed_write.install()  # a write on a transport uvloop closed: a broken connection


def run(main: Coroutine[Any, Any, T], loop: EventLoop) -> T:
    """``asyncio.run`` on the chosen loop."""
    use(loop)
    return asyncio.run(main)
