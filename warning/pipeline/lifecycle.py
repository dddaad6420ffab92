"""Stages 3-5, lifecycle + dispatch: tier signals per hazard + area -> alert versions,
fanned out to the delivery queues (fanout.py) and published on warning.alerts.

One agent, no Kafka hop between a version and its fan-out (a hop cost ~4 ms at p50 and
~11 ms at p99 of the 20-crossings/s latency bench). Signals are handed over in batches of
what is waiting (batching.py: up to ``dispatch_batch`` signals — a grouped record weighs
its signal count — taken from the stream while the previous batch is processed), so an
idle signal goes at once and a burst costs Redis and Kafka round trips per batch, not per
alert. Per batch, in this order:

1. step each alert's state on a copy (the table is not touched yet);
2. fan out the new versions to Redis (idempotent: alert id + version + recipient);
3. publish them on warning.alerts (the record for the API, audits and other consumers)
   and wait for Kafka's acknowledgement;
4. write the states to the table, then acknowledge the batch's signals.

A crash anywhere replays the batch from the unchanged table and re-derives the same
versions (ids are deterministic), so a version's deliveries are never skipped and never
doubled; at worst a version is published twice (same alert id and version).

A timer sends ticks through the signals topic for the alerts that time alone changes now
(expiry, a held downgrade, a silent station: ``tick_due``), so those changes happen
inside stream iteration like any other signal.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson
import structlog
from faust.types import TP, EventT
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from warning.bootstrap import Container
from warning.feeds import partition_of
from warning.lifecycle import LifecycleState, step, tick_due
from warning.models import AlertVersion, TierSignal
from warning.pipeline import signal_records
from warning.pipeline.batching import Waiting, run_batched
from warning.pipeline.common import raw_topic, reject
from warning.pipeline.fanout import fan_out_batch

log = structlog.get_logger()
TICK_EVERY_S = 10.0
WAITING_BATCHES = 4  # signals taken ahead of the batch in hand, in batches: then back-pressure
Taken = tuple[EventT[bytes], signal_records.SignalRecord]  # an event and its record, parsed once on intake


@dataclass
class Stepped:
    """A batch after the pure lifecycle step: new states (with their partitions) and versions."""

    states: dict[str, tuple[int, LifecycleState]] = field(default_factory=dict)
    versions: list[AlertVersion] = field(default_factory=list)


def register(app: faust.App, c: Container) -> None:
    signals = raw_topic(app, c.topics.signals)
    alerts = raw_topic(app, c.topics.alerts)
    rejected = raw_topic(app, c.topics.rejected)
    table = app.Table("alert-lifecycle", default=dict, partitions=app.conf.topic_partitions)

    async def advance(taken: list[Taken]) -> Stepped:
        out = Stepped()
        for event, record in taken:
            key, partition = event.key, event.message.partition
            if record.error:
                await reject(rejected, "lifecycle", f"bad signals record: {record.error}", c.topics.signals, key,
                             event.value)
                continue
            if record.tick is not None:
                apply(out, key.decode() if key else "", None, record.tick, partition)
            for item in record.items:  # one bad signal is refused; the rest of its record still counts
                try:
                    signal = TierSignal.model_validate(item)
                except ValidationError as exc:
                    await reject(rejected, "lifecycle", f"bad signal: {exc}", c.topics.signals, key, orjson.dumps(item))
                    continue
                owner = partition_of(signal.alert_key, app.conf.topic_partitions)
                if owner != partition:  # its state would land in another partition's changelog
                    await reject(rejected, "lifecycle", f"signal for {signal.alert_key} on partition {partition}, "
                                 f"its state lives on {owner}", c.topics.signals, key, orjson.dumps(item))
                    continue
                apply(out, signal.alert_key, signal, signal.at.timestamp(), partition)
        return out

    def apply(out: Stepped, alert_key: str, signal: TierSignal | None, now: float, partition: int) -> None:
        held = out.states.get(alert_key)
        state = held[1] if held else dict(table[alert_key])
        if signal is None and not state:
            return  # a tick for an alert this worker no longer holds
        version = step(state, signal, now, c.lifecycle_config)
        out.states[alert_key] = (partition, state)
        if version is not None:
            out.versions.append(version)

    async def dispatch(versions: list[AlertVersion]) -> None:
        delay = 0.5
        while versions:  # Redis down: hold the partitions and retry; never drop a warning
            try:
                await fan_out_batch(c, versions)
                return
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.error("redis_unavailable_retrying", alert_ids=sorted({v.alert_id for v in versions}),
                          error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def handle(taken: list[Taken]) -> None:
        stepped = await advance(taken)
        await dispatch(stepped.versions)
        published = []
        for version in stepped.versions:
            log.info("alert_version", alert_id=version.alert_id, tier=version.tier.value,
                     version=version.version, msg_type=version.msg_type)
            published.append(await alerts.send(key=version.key.encode(), value=version.model_dump_json().encode()))
        # Acknowledged by Kafka before the states that say "done" are written: a crash
        # in between must replay the batch, not leave a version unpublished.
        await asyncio.gather(*published)
        for alert_key, (partition, state) in stepped.states.items():
            # A batch spans partitions: each state goes to its own changelog partition
            # (Faust's table[key] = v would use the current event's).
            table.data[alert_key] = state
            table.send_changelog(partition, alert_key, state)
        for event, _ in taken:
            event.ack()

    running: list[Waiting[Taken, TP]] = []  # the agent's current batcher, for revocations

    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        for waiting in running:  # their new owner replays these signals
            waiting.forget(set(args[0]) if args else set())

    app.on_partitions_revoked.connect(on_revoked)

    @app.agent(signals, name="lifecycle")
    async def lifecycle(stream: faust.StreamT[bytes]) -> None:
        manual: Any = stream  # Stream.noack() is not on the StreamT protocol
        size = c.settings.dispatch_batch
        waiting: Waiting[Taken, TP] = Waiting(size, WAITING_BATCHES * size, lambda t: t[0].message.tp,
                                              weight=lambda t: t[1].weight)
        running[:] = [waiting]
        events = ((event, signal_records.read(event.value)) async for event in manual.noack().events())
        await run_batched(waiting, events, handle)

    @app.timer(TICK_EVERY_S)
    async def tick() -> None:
        now = time.time()
        for alert_key, state in list(table.items()):
            due = tick_due(state, c.lifecycle_config)
            if due is not None and due <= now:  # time alone changes it (expiry, held downgrade)
                await signals.send(key=alert_key.encode(), value=orjson.dumps({"tick": now}))
