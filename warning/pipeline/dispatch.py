"""Stages 4-5, target + enqueue: an alert version -> delivery jobs in Redis, exactly once.

Idempotent end to end: the alert record refuses to go back a version and the enqueue
script refuses a (version, channel, recipient) it has seen, so replaying warning.alerts
after a crash sends nobody anything twice.
"""

from __future__ import annotations

import asyncio

import faust
import structlog
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from warning.bootstrap import Container
from warning.models import AlertVersion
from warning.pipeline.common import raw_topic, reject
from warning.targeting.audience import audience_tier, select
from warning.targeting.message import render_text

log = structlog.get_logger()
RESIDENT_LANGUAGES = {"zh-CN", "en"}  # residents' texts are rendered up front (stubs are not decoded)


async def fan_out(c: Container, alert: AlertVersion) -> int:
    """Record the version and enqueue its deliveries; returns how many jobs were new."""
    loudest = await c.store.record_alert(alert)
    if loudest is None:
        log.info("alert_version_stale", alert_id=alert.alert_id, version=alert.version)
        return 0
    await c.refresh_grids()
    grids = c.grids.for_alert(alert.area, alert.polygons, alert.circles)
    grid_ids = [g.id for g in grids]
    policy = c.directory.audience.get(audience_tier(alert.tier, loudest, alert.msg_type == "Cancel"))
    if policy is None:
        return 0
    stubs = [] if policy.residents == "none" else await c.recipients.resident_stubs(
        grid_ids, opted_in_only=policy.residents == "opted_in")
    workers, officers = await asyncio.gather(c.recipients.workers(grid_ids), c.recipients.officers())
    targets = select(policy, alert.area, grids, workers, officers, residents_found=len(stubs))
    # What every job shares (text per language, expiry…) is stored once with the alert; a job
    # is a small stub per recipient, built as a plain dict (at a million recipients, models
    # alone would cost seconds). Consumers validate every job they read.
    languages = {target.language for target in targets} | RESIDENT_LANGUAGES
    await c.store.store_texts(alert, {lang: render_text(alert, lang, c.directory.area_name(alert.area, lang))
                                      for lang in languages})
    common = {"alert_id": alert.alert_id, "version": alert.version, "tier": alert.tier.value}
    jobs = [{**common, "channel": t.channel, "recipient": t.recipient_id, "address": t.address,
             "language": t.language, "fallback": t.fallback} for t in targets]
    expires = alert.expires.timestamp()
    added = await c.store.enqueue_raw(jobs, batch=c.settings.enqueue_batch, expires=expires)
    added += await c.store.enqueue_stubs(alert.alert_id, alert.version, alert.tier, stubs,
                                         batch=c.settings.enqueue_batch, expires=expires)
    if grid_ids:
        await c.redis.sadd(c.keys.alert_grids(alert.alert_id), *grid_ids)
        await c.redis.expire(c.keys.alert_grids(alert.alert_id), int(expires - alert.issued_at.timestamp()) + 7 * 86400)
    chain = await c.escalation.on_version(alert, now=alert.issued_at.timestamp())
    log.info("alert_enqueued", alert_id=alert.alert_id, version=alert.version, tier=alert.tier.value,
             grids=len(grids), targeted=len(jobs) + len(stubs), enqueued=added, escalation=chain)
    return added


def register(app: faust.App, c: Container) -> None:
    alerts = raw_topic(app, c.topics.alerts)
    rejected = raw_topic(app, c.topics.rejected)

    @app.agent(alerts, name="dispatch")
    async def dispatch(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                alert = AlertVersion.model_validate_json(event.value)
            except ValidationError as exc:
                await reject(rejected, "dispatch", f"bad alert version: {exc}", c.topics.alerts,
                             event.key, event.value)
                continue
            delay = 0.5
            while True:  # Redis down: hold the partition and retry; never drop a warning
                try:
                    await fan_out(c, alert)
                    break
                except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                    log.error("redis_unavailable_retrying", alert_id=alert.alert_id, error=str(exc),
                              retry_in_s=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
