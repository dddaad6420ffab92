"""Commands from processes without the API's producer (the CLI, the demo): publish on
``warning.control`` with kafka-python and wait in Redis for the lifecycle's answer."""

from __future__ import annotations

import asyncio

from warning.bootstrap import Container
from warning.control import replies
from warning.control.commands import Command, Outcome
from warning.feeds import producer
from warning.partitions import partition_of


def publish(c: Container, cmd: Command) -> None:
    prod = producer(c.settings)
    try:
        future = prod.send(c.topics.control, key=cmd.alert_key.encode(), value=cmd.model_dump_json().encode(),
                           partition=partition_of(cmd.alert_key, c.settings.partitions))
        future.get(timeout=30)  # acks=all: on Kafka before we wait for the answer
    finally:
        prod.close()


async def submit(c: Container, cmd: Command, timeout_s: float | None = None) -> Outcome | None:
    """The command's outcome (the first one, for a retry), or None if no worker answered in time."""
    first = await replies.outcome_of(c.redis, c.keys, cmd.command_id)
    if first is not None:
        return first
    await asyncio.to_thread(publish, c, cmd)
    return await replies.wait_for_outcome(c.redis, c.keys, cmd.command_id, timeout_s or c.settings.control_timeout_s)
