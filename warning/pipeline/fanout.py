"""Stages 4-5, target + enqueue, for a batch of alert versions: Redis round trips per batch.

Idempotent end to end: the alert record refuses to go back a version and the enqueue
script refuses a (version, channel, recipient) it has seen, so replaying the lifecycle's
signals after a crash sends nobody anything twice.

A batch is the new versions of what the lifecycle agent took: one round trip records
them and reads what targeting needs (the grids' version, their staff), one writes texts,
jobs and alert grids (the jobs are visible to consumers from then), then the escalation
timers are read and set — four round trips for the batch instead of about ten per alert.
A version that a later one in the same batch supersedes is recorded (its history stays
complete) but not fanned out: consumers would drop its jobs.
Residents, the big audiences, are read and enqueued alert by alert in bounded batches; an
audience above ``WARNING_FANOUT_UNIT_RESIDENTS`` is cut into work units that every worker
enqueues in parallel (units.py), handed to ``publish`` after the texts are written; the
owning worker then enqueues a first few of those residents itself (the units' Kafka hop is
not on the way to the first handoff).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from warning.bootstrap import Container
from warning.delivery.cell_broadcast import CHANNEL as BROADCAST
from warning.delivery.cell_broadcast import broadcast_targets
from warning.models import AlertVersion, Tier
from warning.pipeline.units import FanoutUnit, enqueue_first, enqueue_unit, units_of
from warning.targeting.audience import audience_tier, narrowed, select
from warning.targeting.directory import Audience
from warning.targeting.grids import Grid

log = structlog.get_logger()
RESIDENT_LANGUAGES = {"zh-CN", "en"}  # residents' texts are rendered up front (stubs are not decoded)
Publish = Callable[[Sequence[FanoutUnit]], Awaitable[None]]
Counts = dict[str, tuple[int, int]]  # grid -> (residents, opted-in residents)


@dataclass
class Plan:
    alert: AlertVersion
    grids: list[Grid]
    policy: Audience
    stubs: list[bytes]
    jobs: list[dict[str, Any]]
    loudest: Tier = Tier.none
    residents: int = 0
    units: list[FanoutUnit] = field(default_factory=list)

    @property
    def grid_ids(self) -> list[str]:
        return [g.id for g in self.grids]


async def fan_out(c: Container, alert: AlertVersion) -> int:
    """Record one version and enqueue its deliveries; returns how many jobs were new."""
    return await fan_out_batch(c, [alert])


async def fan_out_batch(c: Container, alerts: Sequence[AlertVersion], publish: Publish | None = None) -> int:
    """Record every version (in order) and enqueue the deliveries of each alert's latest;
    returns how many jobs were new. Work units of big audiences go to ``publish`` (the
    lifecycle agent sends them on warning.fanout); without it they are enqueued here, in turn."""
    grids = _grids_of(c, alerts)
    grid_ids = sorted({g.id for found in grids for g in found})
    async with c.redis.pipeline(transaction=False) as pipe:  # what targeting reads, with the records
        pipe.get(c.keys.grids_version)
        await c.store.alerts.stage_records(pipe, alerts)
        c.recipients.stage_staff(pipe, grid_ids)
        c.recipients.stage_resident_counts(pipe, grid_ids)
        grids_version, *replies = await pipe.execute()
    recorded = c.store.alerts.recorded(replies[:len(alerts)])
    await c.store.alerts.index(alerts, recorded)
    staffed = len(alerts) + len(grid_ids) + 1
    workers, officers = c.recipients.staff_from(grid_ids, replies[len(alerts):staffed])
    counts = c.recipients.resident_counts_from(grid_ids, replies[staffed:])
    if await c.use_grids_version(grids_version):  # `warning grids import` replaced them: use the new ones
        grids = _grids_of(c, alerts)
        grid_ids = sorted({g.id for found in grids for g in found})
        workers, officers = await c.recipients.staff(grid_ids)
        counts = await c.recipients.resident_counts(grid_ids)
    latest: dict[str, tuple[AlertVersion, Tier, list[Grid]]] = {}
    for alert, loudest, found in zip(alerts, recorded, grids, strict=True):
        if loudest is None:
            log.info("alert_version_stale", alert_id=alert.alert_id, version=alert.version)
        else:
            latest[alert.alert_id] = (alert, loudest, found)  # a later version in the batch supersedes
    plans = [plan for alert, loudest, found in latest.values() if (plan := _plan(c, alert, loudest, found))]
    if not plans:
        return 0
    for p in plans:
        if p.policy.residents != "none":
            await _residents(c, p, counts)
        held = p.alert.release != ["staff", "residents"]
        targets = select(p.policy, p.alert.all_areas, p.grids, [w for g in p.grid_ids for w in workers.get(g, [])],
                         officers, residents_found=p.residents, fallback=not held and p.alert.audience is None)
        common = {"alert_id": p.alert.alert_id, "version": p.alert.version, "tier": p.alert.tier.value}
        # A job is a small stub per recipient, built as a plain dict (at a million recipients,
        # models alone would cost seconds); what jobs share is stored once with the alert.
        p.jobs = [{**common, "channel": t.channel, "recipient": t.recipient_id, "address": t.address,
                   "language": t.language, "fallback": t.fallback} for t in targets]
        loud = c.directory.audience.get(p.loudest)
        if p.policy.residents != "none" and loud is not None and loud.cell_broadcast:  # the area's cells too
            p.jobs += [{**common, "channel": BROADCAST, "recipient": recipient, "address": area, "language": lang,
                        "fallback": ()} for recipient, area, lang in broadcast_targets(c.broadcast, p.alert.all_areas)]
    added = await _write(c, plans)
    units = [unit for p in plans for unit in p.units]
    if units and publish is not None:
        await publish(units)
        for p in plans:  # a first few residents at once: the first handoff waits for no unit's hop
            if p.units:
                added[p.alert.alert_id] += await enqueue_first(c, p.units[0])
    elif units:  # no agent to hand them to (the bench, tests): enqueued here, one after another
        for unit in units:
            added[unit.alert_id] += await enqueue_unit(c, unit)
    live = [p for p in plans if not p.alert.drill]  # a drill never escalates into a live message
    chains = dict(zip((p.alert.alert_id for p in live), await c.escalation.on_versions([p.alert for p in live]),
                      strict=True))  # timed from each issue
    for p in plans:
        chain = chains.get(p.alert.alert_id, "none (drill)")
        log.info("alert_enqueued", alert_id=p.alert.alert_id, version=p.alert.version, tier=p.alert.tier.value,
                 grids=len(p.grids), targeted=len(p.jobs) + p.residents, enqueued=added[p.alert.alert_id],
                 units=len(p.units), escalation=chain)
    return sum(added.values())


async def _residents(c: Container, p: Plan, counts: Counts) -> None:
    """The plan's residents: their stubs read now, or, past one unit's worth, work units."""
    opted = p.policy.residents == "opted_in"
    per_grid = [(grid_id, counts.get(grid_id, (0, 0))[1 if opted else 0]) for grid_id in p.grid_ids]
    p.residents = sum(n for _, n in per_grid)
    if p.residents > c.settings.fanout_unit_residents:
        p.units = units_of(p.alert, opted, per_grid, c.settings.fanout_unit_residents)
    else:
        p.stubs = await c.recipients.resident_stubs(p.grid_ids, opted_in_only=opted)
        p.residents = len(p.stubs)


def _grids_of(c: Container, alerts: Sequence[AlertVersion]) -> list[list[Grid]]:
    return [_grids_of_one(c, a) for a in alerts]


def _grids_of_one(c: Container, alert: AlertVersion) -> list[Grid]:
    if not alert.areas:
        return c.grids.for_alert(alert.area, alert.polygons, alert.circles)
    found: dict[str, Grid] = {}  # a hand-made alert's areas may overlap: each grid once
    for i, area in enumerate(alert.all_areas):
        shapes = (alert.polygons, alert.circles) if i == 0 else ([], [])
        for grid in c.grids.for_alert(area, *shapes):
            found.setdefault(grid.id, grid)
    return list(found.values())


def _plan(c: Container, alert: AlertVersion, loudest: Tier, grids: list[Grid]) -> Plan | None:
    policy = c.directory.audience.get(audience_tier(alert.tier, loudest, alert.msg_type == "Cancel"))
    if policy is None:
        return None
    return Plan(alert, grids, narrowed(policy, alert, c.settings.drill_audience), [], [], loudest)


def _texts(c: Container, alert: AlertVersion, languages: set[str]) -> dict[str, str]:
    """The version's text per language, and per ``channel:language`` where a template differs."""
    tz, templates = c.directory.timezone, c.templates
    texts = {}
    for lang in languages | RESIDENT_LANGUAGES:
        name = c.directory.area_name(alert.area, lang)
        texts[lang] = templates.render(alert, lang, name, tz)
        for channel in templates.override_channels(alert):
            texts[f"{channel}:{lang}"] = templates.render(alert, lang, name, tz, channel)
    return texts


async def _write(c: Container, plans: list[Plan]) -> dict[str, int]:
    """Texts and alert grids of every plan in one round trip, then their jobs in a second,
    residents after, per alert. Texts are written before the jobs that need them: on Redis
    Cluster they live on other masters, and one pipeline's order holds per node only."""
    batch = c.settings.enqueue_batch
    async with c.redis.pipeline(transaction=False) as pipe:
        for p in plans:
            alert = p.alert
            c.store.alerts.stage_texts(pipe, alert, _texts(c, alert, {job["language"] for job in p.jobs}))
            if p.grids:
                pipe.sadd(c.keys.alert_grids(alert.alert_id), *p.grid_ids)
                pipe.expire(c.keys.alert_grids(alert.alert_id), int(alert.expires.timestamp()
                                                                    - alert.issued_at.timestamp()) + 7 * 86400)
        await pipe.execute()
    calls: list[tuple[str, int]] = []  # (alert id, how many enqueue replies) in pipeline order
    async with c.redis.pipeline(transaction=False) as pipe:
        for p in plans:
            calls.append((p.alert.alert_id,
                          await c.store.queue.stage_enqueue(pipe, p.jobs, batch, p.alert.expires.timestamp())))
        results = await c.store.replication.execute(pipe, "enqueue")
    replies = iter(results)
    added = {alert_id: sum(int(next(replies)) for _ in range(n)) for alert_id, n in calls}
    for p in plans:
        if p.stubs:
            added[p.alert.alert_id] += await c.store.queue.enqueue_stubs(
                p.alert.alert_id, p.alert.version, p.alert.tier, p.stubs, batch=batch,
                expires=p.alert.expires.timestamp())
    return added
