"""The bundled demo scenario: replay it through the live pipeline and report what arrived.

Each run gets a namespace of its own (topics, consumer group, Redis keys), because the
pipeline remembers: replaying the scenario into last run's state would upgrade last
run's alerts instead of raising new ones. The previous runs' namespaces are deleted
first; the current one is kept for inspection. The scenario's times are offsets from
now. The demo predicts the alert versions with the offline replay (the same pure code
as the agents), waits until Redis shows every one of them handed to its channels — under
the shipped release policy a single station's warning reaches grid workers, endpoints and
officers first — then has the district duty officer approve what waits for a second
person (the residents), waits again, acknowledges each as the township duty officer, and
returns a summary.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import orjson
import redis.asyncio as aioredis
from kafka import KafkaAdminClient

from warning.areas import inside
from warning.bootstrap import Container
from warning.config import CHANNELS, Settings
from warning.control.commands import Actor, Command
from warning.control.replies import pending_approvals
from warning.control.submit import submit
from warning.feeds import ensure_topics, producer, push_observations
from warning.models import Ack, AlertVersion, Observation
from warning.readmodel import alert_status
from warning.replay import replay
from warning.response.ack import acknowledge

IN_FLIGHT = ("queued", "sending")
DEMO_MARK = "demo-"


def demo_settings(base: Settings, stamp: str) -> Settings:
    """The namespace of one demo run, inside the configured one."""
    ns = f"{DEMO_MARK}{stamp}"
    return base.model_copy(update={"topic_prefix": f"{base.topic_prefix}{ns}.",
                                   "app_id": f"{base.app_id}-{ns}",
                                   "redis_prefix": f"{base.redis_prefix}-{ns}"})


async def forget_old_demos(base: Settings, keep: Settings, redis: aioredis.Redis) -> int:
    """Delete earlier demo runs' topics, consumer groups and Redis keys; returns topics deleted."""
    topic_marks = (f"{base.topic_prefix}{DEMO_MARK}", f"{base.app_id}-{DEMO_MARK}")
    mine = (keep.topic_prefix, f"{keep.app_id}-")
    admin = KafkaAdminClient(bootstrap_servers=base.kafka_bootstrap, client_id="warning-demo")
    try:
        old = [t for t in admin.list_topics() if t.startswith(topic_marks) and not t.startswith(mine)]
        if old:
            admin.delete_topics(old)
        groups = [g["group_id"] for g in admin.list_groups()
                  if g["group_id"].startswith(f"{base.app_id}-{DEMO_MARK}") and g["group_id"] != keep.app_id]
        if groups:
            admin.delete_groups(groups)
    finally:
        admin.close()
    async for key in redis.scan_iter(match=f"{base.redis_prefix}-{DEMO_MARK}*", count=1000):
        if not key.startswith(f"{keep.redis_prefix}:"):
            await redis.delete(key)
    return len(old)


def scenario_lines(now: datetime | None = None) -> list[bytes]:
    """The scenario with ``"t": seconds`` turned into observed_at relative to now."""
    now = now or datetime.now(UTC)
    raw = resources.files("warning.data").joinpath("demo-scenario.jsonl").read_bytes()
    out = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            out.append(line)  # the scenario's deliberately malformed line
            continue
        if isinstance(record, dict) and "t" in record:
            at = now + timedelta(seconds=float(record.pop("t")))
            record["observed_at"] = at.isoformat()
        out.append(orjson.dumps(record))
    return out


def expected_alerts(c: Container, lines: list[bytes]) -> list[AlertVersion]:
    observations = []
    for line in lines:
        try:
            observations.append(Observation.model_validate_json(line))
        except ValueError:
            continue
    return list(replay(c.pack, c.directory, observations, c.eval_config, c.lifecycle_config))


def _in_flight(counts: dict[str, int]) -> int:
    return sum(v for status, v in counts.items() if status in IN_FLIGHT)


async def wait_delivered(c: Container, alerts: list[AlertVersion], timeout: float) -> dict[str, Any]:
    """Poll until each alert's latest version is recorded and nothing is left in flight."""
    latest = {a.alert_id: a.version for a in alerts}
    deadline = time.monotonic() + timeout
    statuses: dict[str, Any] = {}
    while time.monotonic() < deadline:
        statuses = {a: await alert_status(c.store, a) for a in latest}
        ready = all(
            s is not None and s["version"] >= latest[a]
            and s["channels"]
            and all(not _in_flight(counts) for counts in s["channels"].values())
            for a, s in statuses.items())
        if ready:
            return statuses
        await asyncio.sleep(0.2)
    missing = [a for a, s in statuses.items() if not s or s["version"] < latest[a]]
    raise TimeoutError(f"demo alerts not fully delivered within {timeout:.0f}s: "
                       f"missing or pending {missing or statuses}")


async def township_officer(c: Container, area: str) -> str:
    officers = await c.recipients.officers()
    for officer in officers:
        if officer.get("level") == "township" and inside(area, officer.get("jurisdiction", "~")):
            return str(officer["id"])
    return str(officers[0]["id"])


async def approve_held(c: Container) -> list[str]:
    """The district duty officer approves every version waiting for a second person."""
    officers = await c.recipients.officers()
    approved = []
    for pending in await pending_approvals(c.redis, c.keys):
        approver = next(o for o in officers if o.get("level") == "district"
                        and inside(pending["area"], o.get("jurisdiction", "~")) and o["id"] != pending["author"])
        alert_id = pending["alert_id"]
        found = await c.store.alerts.summary(alert_id)
        key = found.key if found else None
        actor = Actor(id=approver["id"], role="officer", level="district", area=approver["jurisdiction"], via="demo")
        outcome = await submit(c, Command(command_id=f"demo-approve-{alert_id}", op="approve", alert_key=str(key),
                                          alert_id=alert_id, actor=actor, at=time.time()))
        if outcome is None or outcome.status != 200:
            raise TimeoutError(f"the approval of {alert_id} was not applied: {outcome}")
        approved.append(alert_id)
    return approved


async def run_demo(c: Container, timeout: float = 120.0) -> dict[str, Any]:
    ensure_topics(c.settings)
    lines = scenario_lines()
    expected = expected_alerts(c, lines)
    push_observations(c.settings, lines)
    await wait_delivered(c, expected, timeout)
    await approve_held(c)  # answered once its fan-out is done: the residents' jobs are queued
    statuses = await wait_delivered(c, expected, timeout)
    prod = producer(c.settings)
    acks = 0
    try:
        for alert_id, status in statuses.items():
            ack = Ack(alert_id=alert_id, by=await township_officer(c, status["area"]), at=datetime.now(UTC),
                      via="demo", role="officer", level="township")
            outcome = await acknowledge(c.redis, c.keys, ack)
            if outcome.first:
                prod.send(c.topics.acks, key=alert_id.encode(), value=outcome.ack.model_dump_json().encode())
                acks += 1
        prod.flush()
    finally:
        prod.close()
    final = {a: await alert_status(c.store, a) for a in statuses}
    deliveries = {ch: sum(s["reached"].get(ch, 0) for s in final.values() if s)
                  for ch in CHANNELS}
    return {"alerts": len(final), "deliveries": deliveries, "acks": acks, "details": final}
