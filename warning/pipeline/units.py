"""City-wide fan-out in parallel: an audience of residents larger than one work unit
(``WARNING_FANOUT_UNIT_RESIDENTS``) is not enqueued inline by the worker that owns the
alert's lifecycle partition. Its grids are cut into units of about that many residents,
published on warning.fanout keyed by unit (so they spread over every partition), and each
unit is enqueued by the worker that holds its partition: every worker helps, and the
lifecycle partition steps its next alert at once. Smaller audiences keep the inline path,
with no Kafka hop added to the latency path.

The owning worker enqueues the first unit's first ~FIRST_BATCH residents itself once the
units are published, so a city-wide alert's first handoff waits for neither the units'
Kafka hop nor a unit's first read of several grids; the unit queues them again later,
which the enqueue script refuses (nobody twice).

A unit reads its own grids' stubs, a few grids at a time: no process holds the whole
audience. Idempotent as the inline path: the enqueue script refuses a (version, channel,
recipient) it has seen, so a unit replayed after a crash enqueues nobody twice. A unit of a
version that a later one superseded, or of an alert already expired, enqueues nothing.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import faust
import orjson
import structlog

from warning.bootstrap import Container
from warning.delivery.batches import FIRST_BATCH
from warning.models import AlertVersion, Tier
from warning.pipeline.common import raw_topic, reject, until_redis_answers

log = structlog.get_logger()
READ_GRIDS = 8  # grids whose stubs are read and enqueued together inside a unit


@dataclass(frozen=True)
class FanoutUnit:
    alert_id: str
    version: int
    tier: Tier
    expires: float  # epoch seconds: a unit taken after it enqueues nothing
    opted_in_only: bool
    grids: tuple[str, ...]
    index: int
    of: int

    @property
    def key(self) -> str:
        """One Kafka key per unit: the units of an alert spread over the partitions."""
        return f"{self.alert_id}.v{self.version}.u{self.index}"

    def to_bytes(self) -> bytes:
        return orjson.dumps({"alert_id": self.alert_id, "version": self.version, "tier": self.tier.value,
                             "expires": self.expires, "opted_in_only": self.opted_in_only,
                             "grids": self.grids, "index": self.index, "of": self.of})

    @classmethod
    def from_bytes(cls, raw: bytes) -> FanoutUnit:
        """Raises ValueError naming what is wrong (the agent refuses the record with it)."""
        try:
            data = orjson.loads(raw)
            unit = cls(alert_id=str(data["alert_id"]), version=int(data["version"]), tier=Tier(data["tier"]),
                       expires=float(data["expires"]), opted_in_only=bool(data["opted_in_only"]),
                       grids=tuple(str(g) for g in data["grids"]), index=int(data["index"]), of=int(data["of"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad fan-out unit: {type(exc).__name__}: {exc}") from exc
        if not unit.alert_id or unit.version < 1 or not unit.grids or not 0 <= unit.index < unit.of:
            raise ValueError(f"bad fan-out unit: alert {unit.alert_id!r} v{unit.version}, "
                             f"unit {unit.index} of {unit.of}, {len(unit.grids)} grids")
        return unit


def cut(counts: Sequence[tuple[str, int]], per_unit: int) -> list[list[str]]:
    """Grids in their order, grouped until a group holds ``per_unit`` residents (a grid
    larger than that is a unit of its own); grids without residents are left out."""
    units: list[list[str]] = []
    held = 0
    for grid, count in counts:
        if count <= 0:
            continue
        if not units or held + count > per_unit:
            units.append([])
            held = 0
        units[-1].append(grid)
        held += count
    return units


def units_of(alert: AlertVersion, opted_in_only: bool, counts: Sequence[tuple[str, int]],
             per_unit: int) -> list[FanoutUnit]:
    groups = cut(counts, per_unit)
    return [FanoutUnit(alert.alert_id, alert.version, alert.tier, alert.expires.timestamp(), opted_in_only,
                       tuple(grids), i, len(groups)) for i, grids in enumerate(groups)]


def _chunks(grids: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for at in range(0, len(grids), size):
        yield grids[at:at + size]


async def enqueue_unit(c: Container, unit: FanoutUnit) -> int:
    """Enqueue one unit's residents; returns how many jobs were new."""
    where = {"alert_id": unit.alert_id, "version": unit.version, "unit": unit.index, "units": unit.of}
    if unit.expires <= time.time():
        log.info("fanout_unit_expired", **where)
        return 0
    current = (await c.store.alerts.current_versions([unit.alert_id])).get(unit.alert_id, 0)
    if current > unit.version:
        log.info("fanout_unit_superseded", current_version=current, **where)
        return 0
    added = read = 0
    for grids in _chunks(unit.grids, READ_GRIDS):
        stubs = await c.recipients.resident_stubs(grids, opted_in_only=unit.opted_in_only)
        read += len(stubs)
        added += await c.store.queue.enqueue_stubs(unit.alert_id, unit.version, unit.tier, stubs,
                                                   batch=c.settings.enqueue_batch, expires=unit.expires)
    log.info("fanout_unit_enqueued", grids=len(unit.grids), residents=read, enqueued=added, **where)
    return added


async def enqueue_first(c: Container, unit: FanoutUnit) -> int:
    """About FIRST_BATCH residents of the unit's first grid, queued now (see the module's doc)."""
    stubs = await c.recipients.some_resident_stubs(unit.grids[0], unit.opted_in_only, FIRST_BATCH)
    added = await c.store.queue.enqueue_stubs(unit.alert_id, unit.version, unit.tier, stubs,
                                              batch=c.settings.enqueue_batch, expires=unit.expires)
    log.info("fanout_first_enqueued", alert_id=unit.alert_id, version=unit.version, grid=unit.grids[0],
             residents=len(stubs), enqueued=added)
    return added


def register(app: faust.App, c: Container) -> None:
    units = raw_topic(app, c.topics.fanout)
    rejected = raw_topic(app, c.topics.rejected)

    @app.agent(units, name="fanout-units")
    async def fanout_units(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                unit = FanoutUnit.from_bytes(event.value)
            except ValueError as exc:
                await reject(rejected, "fanout", str(exc), c.topics.fanout, event.key, event.value)
                continue
            c.pulse.took_work()
            await until_redis_answers(c.redis, functools.partial(enqueue_unit, c, unit), alert_id=unit.alert_id,
                                      unit=unit.index)
