"""The escalation worker (`warning escalator`): fire due steps, notify, publish.

Any number may run. Each tick fires the due steps (once, in Redis — escalation.py) and
works through the outbox as a consumer group: for each step the duty officers of that
level whose jurisdiction covers the alert get an escalation message on their own
channel (an idempotent enqueue, so a re-read step notifies nobody twice), and the step
is published on ``warning.acks`` and appended to the alert's audit trail. The clock is
a parameter, so tests drive it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from redis.exceptions import ResponseError

from warning.areas import covers
from warning.bootstrap import Container
from warning.models import AlertVersion, DeliveryJob
from warning.response.ack import audit
from warning.response.escalation import Step
from warning.targeting.audience import personal
from warning.targeting.message import escalation_text

log = structlog.get_logger()
GROUP = "escalators"
Publish = Callable[[dict[str, Any]], Awaitable[None]]


class Escalator:
    def __init__(self, c: Container, publish: Publish, consumer: str | None = None, idle_ms: int = 30_000) -> None:
        self.c = c
        self.timers = c.escalation
        self.publish = publish
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.idle_ms = idle_ms
        self._group_ready = False

    async def tick(self, now: float) -> list[Step]:
        """Fire what is due at ``now`` and process every outbox entry this escalator gets."""
        await self.timers.fire_due(now)
        await self._ensure_group()
        outbox = self.c.keys.escalation_outbox
        reclaimed: Any = await self.c.redis.xautoclaim(outbox, GROUP, self.consumer, min_idle_time=self.idle_ms,
                                                       count=100)
        fresh: Any = await self.c.redis.xreadgroup(GROUP, self.consumer, {outbox: ">"}, count=100)
        entries = list(reclaimed[1]) + [e for _, batch in fresh or [] for e in batch]
        done = []
        for entry_id, fields in entries:
            if not fields:
                continue
            step = Step(fields["alert_id"], int(fields["step"]), fields["level"], int(fields["version"]),
                        float(fields["due"]), entry_id)
            await self._notify(step, now)
            done.append(step)
            await self.c.redis.xack(outbox, GROUP, entry_id)
            await self.c.redis.xdel(outbox, entry_id)
        return done

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self.c.redis.xgroup_create(self.c.keys.escalation_outbox, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def _notify(self, step: Step, now: float) -> None:
        c = self.c
        raw = await c.store.alerts.latest_json(step.alert_id)
        if not raw:
            return
        alert = AlertVersion.model_validate_json(raw)
        officers = [o for o in await c.recipients.officers()
                    if o.get("level") == step.level and covers(o.get("jurisdiction", "~"), alert.area)]
        timeout = c.settings.escalation_timeouts_s.get(alert.tier.value, 0)
        minutes = max(1, round(timeout * step.step / 60))
        jobs = []
        for officer in officers:
            target = personal(officer)
            if target is None:
                continue
            name = c.directory.area_name(alert.area, target.language)
            jobs.append(DeliveryJob(
                alert_id=alert.alert_id, version=alert.version, tier=alert.tier, msg_type=alert.msg_type,
                channel=target.channel, recipient=f"{officer['id']}#esc{step.step}", address=target.address,
                language=target.language, text=escalation_text(alert, target.language, name, minutes),
                expires=alert.expires.timestamp(), issued_at=now, fallback=list(target.fallback)))
        added = await c.store.queue.enqueue(jobs)
        event = {"event": "escalation", "alert_id": step.alert_id, "version": step.version, "step": step.step,
                 "level": step.level, "notified": sorted(o["id"] for o in officers), "due": step.due, "at": now}
        chain, mark = c.keys.escalation(step.alert_id), f"published:{step.step}"
        # A re-read outbox entry (its escalator died mid-step) re-enqueues nothing (idempotent)
        # and publishes only if the first reader did not get that far.
        if not await c.redis.hexists(chain, mark):
            await audit(c.redis, c.keys, step.alert_id, event)
            await self.publish(event)
            await c.redis.hincrby(c.keys.stats, "escalations", 1)
            await c.redis.hset(chain, mark, now)
        log.warning("alert_escalated", alert_id=step.alert_id, step=step.step, level=step.level,
                    notified=event["notified"], enqueued=added)
