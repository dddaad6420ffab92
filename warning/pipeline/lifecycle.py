"""Stages 3-5, lifecycle + dispatch: tier signals per hazard + area -> alert versions,
fanned out to the delivery queues (fanout.py) and published on warning.alerts.

One agent, no Kafka hop between a version and its fan-out (a hop cost ~4 ms at p50 and
~11 ms at p99 of the 20-crossings/s latency bench). Signals are handed over in batches of
what is waiting (batching.py: up to ``dispatch_batch`` signals — a grouped record weighs
its signal count — taken from the stream while the previous batch is processed), so an
idle signal goes at once and a burst costs Redis and Kafka round trips per batch, not per
alert. Per batch, in this order:

1. step each alert's state on a copy (the table is not touched yet);
2. fan out the new versions to Redis (idempotent: alert id + version + recipient); the
   residents of an audience above one work unit are sent on warning.fanout as units that
   every worker enqueues (units.py), acknowledged by Kafka with the versions in step 3;
3. publish them on warning.alerts (the record for the API, audits and other consumers)
   and wait for Kafka's acknowledgement;
4. write the states to the table, then acknowledge the batch's signals.

A crash anywhere replays the batch from the unchanged table and re-derives the same
versions (ids are deterministic), so a version's deliveries are never skipped and never
doubled; at worst a version is published twice (same alert id and version).

A timer sends ticks through the signals topic for the alerts that time alone changes now
(expiry, a held downgrade, a silent station, an approval's hold: ``tick_due``), so those
changes happen inside stream iteration like any other signal.

Officers' commands (``warning.control``, keyed by alert key like the signals, so the same
worker owns both) are applied in the same batches (warning/control/commands.py): one
writer per alert, ordered with the readings. Their outcomes, the audit trail and the
approvals index are written after the states (warning/control/replies.py), so an answer
the API gives is one the changelog keeps. A signal from a silenced source counts as its
source gone quiet (tier none): its readings are still evaluated and kept upstream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
import structlog
from faust.types import TP, EventT
from pydantic import ValidationError

from warning.bootstrap import Container
from warning.control import replies
from warning.control.commands import Command, Outcome, apply_command, hold_timed_out
from warning.control.notify import approval_jobs
from warning.control.release import corroborated_release
from warning.lifecycle import LifecycleState, step, tick_due
from warning.models import AlertVersion, Tier, TierSignal
from warning.partitions import partition_of
from warning.pipeline import signal_records
from warning.pipeline.batching import Waiting, run_batched
from warning.pipeline.common import changelog_configs, raw_topic, reject, until_redis_answers
from warning.pipeline.fanout import fan_out_batch
from warning.pipeline.produce import DirectProducer
from warning.pipeline.units import FanoutUnit
from warning.response.ack import audit
from warning.topics import ALERT_LIFECYCLE

log = structlog.get_logger()
TICK_EVERY_S = 10.0
WAITING_BATCHES = 4  # signals taken ahead of the batch in hand, in batches: then back-pressure
Record = signal_records.SignalRecord | Command
Taken = tuple[EventT[bytes], Record]  # an event and its record, parsed once on intake


@dataclass
class Stepped:
    """A batch after the pure lifecycle step: new states (with their partitions), versions,
    and what officers are told once the states are stored."""

    states: dict[str, tuple[int, LifecycleState]] = field(default_factory=dict)
    versions: list[AlertVersion] = field(default_factory=list)
    answers: dict[str, Outcome] = field(default_factory=dict)  # command id -> outcome
    audit: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (alert id, event)
    approvals: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # alert id -> pending


def decided_at(event: EventT[bytes]) -> datetime:
    """A version's ``issued_at``: the time its signal record was written, not the clock when it is
    stepped — a worker that crashed before storing its table re-steps the same records, and must
    re-derive the same versions (CAP identifies a message by sender, identifier and sent, and the
    next version's references carry that time)."""
    at = event.message.timestamp
    return datetime.fromtimestamp(at, UTC) if at and at > 0 else datetime.now(UTC)


def read_record(control_topic: str, event: EventT[bytes]) -> Record:
    if event.message.topic != control_topic:
        return signal_records.read(event.value)
    try:
        return Command.model_validate_json(event.value)
    except ValidationError as exc:
        return signal_records.SignalRecord(error=f"bad control command: {exc}")


def register(app: faust.App, c: Container) -> None:
    signals = raw_topic(app, c.topics.signals)
    inputs = raw_topic(app, c.topics.signals, c.topics.control)
    rejected = raw_topic(app, c.topics.rejected)
    fanout = raw_topic(app, c.topics.fanout)
    table = app.Table(ALERT_LIFECYCLE, default=dict, partitions=app.conf.topic_partitions,
                      extra_topic_configs=changelog_configs(c.settings))
    direct = DirectProducer(app.producer)

    async def advance(taken: list[Taken]) -> Stepped:
        out = Stepped()
        for event, record in taken:
            key, partition = event.key, event.message.partition
            source_topic = event.message.topic
            if isinstance(record, Command):
                owner = partition_of(record.alert_key, app.conf.topic_partitions)
                if owner != partition:
                    await reject(rejected, "lifecycle", f"command for {record.alert_key} on partition {partition}, "
                                 f"its state lives on {owner}", source_topic, key, event.value)
                    continue
                await command(out, record, partition)
                continue
            if record.error:
                reason = record.error if source_topic == c.topics.control else f"bad signals record: {record.error}"
                await reject(rejected, "lifecycle", reason, source_topic, key, event.value)
                continue
            wall = decided_at(event)
            if record.tick is not None:
                await apply(out, key.decode() if key else "", None, record.tick, partition, wall)
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
                await apply(out, signal.alert_key, signal, signal.at.timestamp(), partition, wall)
        return out

    def state_of(out: Stepped, alert_key: str) -> LifecycleState:
        held = out.states.get(alert_key)
        return held[1] if held else dict(table[alert_key])

    def keep(out: Stepped, alert_key: str, partition: int, state: LifecycleState,
             pending_before: Any, version: AlertVersion | None) -> None:
        out.states[alert_key] = (partition, state)
        if version is not None:
            out.versions.append(version)
        pending = state.get("pending")
        if pending != pending_before:  # an approval was asked for, moved, granted, refused or ended
            out.approvals[(pending or pending_before)["alert"]["alert_id"]] = pending

    async def apply(out: Stepped, alert_key: str, signal: TierSignal | None, now: float, partition: int,
                    wall: datetime) -> None:
        state = state_of(out, alert_key)
        if signal is None and not state:
            return  # a tick for an alert this worker no longer holds
        before = state.get("pending")
        if signal is not None and (silence := await c.silences.silencing(signal)) is not None:
            log.info("signal_silenced", alert_key=alert_key, station_id=signal.station_id, tier=signal.tier.value,
                     silence_id=silence.silence_id)
            signal = signal.model_copy(update={"tier": Tier.none})  # as if its source had gone quiet
        version = step(state, signal, now, c.lifecycle_config, wall)
        if version is None and signal is None:
            version, event = hold_timed_out(state, now, c.lifecycle_config, c.settings.escalation_levels)
            if event is not None:
                out.audit.append((state["alert_id"], event))
        elif version is None and (version := corroborated_release(state, c.lifecycle_config.policy)):
            out.audit.append((version.alert_id, {"event": "approve", "by": "policy",
                                                 "at": datetime.now(UTC).isoformat(),
                                                 "reason": "corroborated: enough stations of the area agree",
                                                 "version": version.version}))
        keep(out, alert_key, partition, state, before, version)

    async def command(out: Stepped, cmd: Command, partition: int) -> None:
        state = state_of(out, cmd.alert_key)
        before = state.get("pending")
        versions: list[AlertVersion] = []
        if cmd.op == "resweep" and state:  # silences changed: what they cover now counts as quiet
            for source, (tier, at) in list(state.get("stations", {}).items()):
                station, _, rule = source.partition("#")
                probe = TierSignal(hazard=state["hazard"], area=state["area"], station_id=station, tier=Tier(tier),
                                   at=datetime.fromtimestamp(at, UTC), rule_id=rule)
                silenced = tier != Tier.none.value and await c.silences.silencing(probe) is not None
                if silenced and (v := step(state, probe.model_copy(update={"tier": Tier.none}), at,
                                           c.lifecycle_config, datetime.fromtimestamp(cmd.at, UTC))):
                    versions.append(v)
        applied = apply_command(state, cmd, c.lifecycle_config)
        versions += applied.versions
        log.info("control_command", op=cmd.op, alert_id=cmd.alert_id or state.get("alert_id"),
                 command_id=cmd.command_id, by=cmd.actor.id, status=applied.outcome.status)
        for version in versions[:-1]:
            out.versions.append(version)
        keep(out, cmd.alert_key, partition, state, before, versions[-1] if versions else None)
        out.answers[cmd.command_id] = applied.outcome
        alert_id = cmd.alert_id or state.get("alert_id") or ""
        out.audit += [(alert_id, event) for event in applied.audit if alert_id]

    async def dispatch(versions: list[AlertVersion], sent: list[Any]) -> None:
        """Fan the versions out; the work units of big audiences are sent on warning.fanout
        and their acknowledgements added to ``sent`` (awaited before the batch is acknowledged)."""

        async def publish(units: Sequence[FanoutUnit]) -> None:
            sent.extend([await fanout.send(key=u.key.encode(), value=u.to_bytes()) for u in units])

        if versions:
            await until_redis_answers(c.redis, lambda: fan_out_batch(c, versions, publish),
                                      alert_ids=sorted({v.alert_id for v in versions}))

    async def handle(taken: list[Taken]) -> None:
        c.pulse.took_work()
        stepped = await advance(taken)
        published: list[Any] = []
        await dispatch(stepped.versions, published)
        for version in stepped.versions:
            log.info("alert_version", alert_id=version.alert_id, tier=version.tier.value,
                     version=version.version, msg_type=version.msg_type)
            published.append(await direct.send(c.topics.alerts, version.key.encode(),
                                               version.model_dump_json().encode()))
        # Acknowledged by Kafka before the states that say "done" are written: a crash
        # in between must replay the batch, not leave a version unpublished.
        await asyncio.gather(*published)
        for alert_key, (partition, state) in stepped.states.items():
            # A batch spans partitions: each state goes to its own changelog partition
            # (Faust's table[key] = v would use the current event's).
            table.data[alert_key] = state
            await direct.changelog(table, partition, alert_key, state)
        if stepped.answers or stepped.audit or stepped.approvals:
            await tell_officers(stepped)
        for event, _ in taken:
            event.ack()

    async def notify_approvers(asked: list[dict[str, Any]]) -> None:
        if not asked:
            return
        officers, now = await c.recipients.officers(), time.time()
        for pending in asked:
            on_timeout = c.lifecycle_config.policy.timeout_action(Tier(pending["alert"]["tier"]))
            jobs = approval_jobs(pending, officers, c.settings.escalation_levels, c.directory.area_name, now,
                                 on_timeout)
            added = await c.store.queue.enqueue(jobs)
            log.info("approvers_notified", alert_id=pending["alert"]["alert_id"], version=pending["version"],
                     level=pending["level"], approvers=sorted(j.recipient for j in jobs), enqueued=added)

    async def tell_officers(stepped: Stepped) -> None:
        async def outcomes() -> None:  # the states are stored; officers must hear what became of their commands
            for alert_id, event in stepped.audit:
                await audit(c.redis, c.keys, alert_id, event)
            await replies.index_approvals(c.redis, c.keys, stepped.approvals)
            await notify_approvers([p for p in stepped.approvals.values() if p])
            await replies.answer(c.redis, c.keys, stepped.answers)

        await until_redis_answers(c.redis, outcomes, what="control outcomes")

    running: list[Waiting[Taken, TP]] = []  # the agent's current batcher, for revocations

    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        for waiting in running:  # their new owner replays these signals
            waiting.forget(set(args[0]) if args else set())

    app.on_partitions_revoked.connect(on_revoked)

    @app.agent(inputs, name="lifecycle")
    async def lifecycle(stream: faust.StreamT[bytes]) -> None:
        manual: Any = stream  # Stream.noack() is not on the StreamT protocol
        size = c.settings.dispatch_batch
        waiting: Waiting[Taken, TP] = Waiting(size, WAITING_BATCHES * size, lambda t: t[0].message.tp,
                                              weight=lambda t: t[1].weight)
        running[:] = [waiting]
        events = ((event, read_record(c.topics.control, event)) async for event in manual.noack().events())
        await run_batched(waiting, events, handle)

    @app.timer(TICK_EVERY_S)
    async def tick() -> None:
        now = time.time()
        for alert_key, state in list(table.items()):
            due = tick_due(state, c.lifecycle_config)
            if due is not None and due <= now:  # time alone changes it (expiry, held downgrade)
                await signals.send(key=alert_key.encode(), value=orjson.dumps({"tick": now}))
