"""Escalation with a controllable clock on real Redis: each level on time, an ack stops
the chain, two escalators fire each step once, a restart continues on time."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import lane_entries
from warning.bootstrap import Container, bootstrap
from warning.config import Settings
from warning.models import Ack, AlertVersion, Tier
from warning.response.ack import acknowledge, audit_trail
from warning.response.escalator import Escalator

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def alert(tier: Tier = Tier.red, version: int = 1, msg_type: str = "Alert") -> AlertVersion:
    return AlertVersion(alert_id="gas-440305001-20261125T100000Z", key="gas|440305001", hazard="gas",
                        area="440305001", tier=tier, version=version, msg_type=msg_type,  # type: ignore[arg-type]
                        issued_at=T0, caused_at=T0, expires=T0 + timedelta(days=3650), cause="test")


class Events:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    async def __call__(self, event: dict[str, Any]) -> None:
        self.published.append(event)


async def issue(c: Container, version: AlertVersion) -> None:
    await c.store.alerts.record_alert(version)
    await c.escalation.on_version(version, now=version.issued_at.timestamp())


async def escalation_jobs(c: Container) -> Counter[str]:
    """Who got an escalation message (each "<officer>#esc<step>" enqueued once, or more)."""
    seen: Counter[str] = Counter()
    for channel in ("sms", "push"):
        for tier in Tier:
            for _, fields in await lane_entries(c, channel, tier):
                job = __import__("orjson").loads(fields["job"])
                if "#esc" in job["recipient"]:
                    seen[job["recipient"]] += 1
    return seen


async def test_no_ack_notifies_each_level_at_its_time(container: Container) -> None:
    c, events = container, Events()
    await issue(c, alert())
    escalator = Escalator(c, events)
    t0 = T0.timestamp()
    assert await escalator.tick(t0 + 119.9) == []
    (step1,) = await escalator.tick(t0 + 120)
    assert (step1.step, step1.level) == (1, "district")
    assert await escalator.tick(t0 + 239) == []
    (step2,) = await escalator.tick(t0 + 240)
    (step3,) = await escalator.tick(t0 + 360)
    assert [(s.level, s.due - t0) for s in (step2, step3)] == [("city", 240), ("province", 360)]
    assert await escalator.tick(t0 + 100_000) == []  # the chain ends at the top
    assert [(e["level"], e["notified"]) for e in events.published] == [
        ("district", ["off-ns"]), ("city", ["off-sz"]), ("province", [])]
    assert await escalation_jobs(c) == Counter({"off-ns#esc1": 1, "off-sz#esc2": 1})
    assert (await c.escalation.state(alert().alert_id))["state"] == "exhausted"
    assert [e["event"] for e in await audit_trail(c.redis, c.keys, alert().alert_id)] == ["escalation"] * 3


async def test_ack_at_district_stops_city(container: Container) -> None:
    c, events = container, Events()
    await issue(c, alert())
    escalator, t0 = Escalator(c, events), T0.timestamp()
    await escalator.tick(t0 + 120)
    outcome = await acknowledge(c.redis, c.keys, Ack(alert_id=alert().alert_id, by="off-ns", at=T0, via="test"))
    assert outcome.first and outcome.stopped_escalation
    assert await escalator.tick(t0 + 10_000) == []
    assert [e["level"] for e in events.published] == ["district"]
    assert (await c.escalation.state(alert().alert_id))["state"] == "acknowledged"


async def test_two_escalators_fire_each_step_once(container: Container, settings: Settings) -> None:
    other = bootstrap(settings, logging=False)  # a second process's view: own connections
    events = Events()
    one, two = Escalator(container, events, consumer="one"), Escalator(other, events, consumer="two")
    try:
        await issue(container, alert())
        t0 = T0.timestamp()
        for at in (t0 + 120, t0 + 120.5, t0 + 240, t0 + 240, t0 + 360, t0 + 400):
            await asyncio.gather(one.tick(at), two.tick(at), one.tick(at), two.tick(at))
        assert sorted(e["step"] for e in events.published) == [1, 2, 3]
        assert await escalation_jobs(container) == Counter({"off-ns#esc1": 1, "off-sz#esc2": 1})
    finally:
        await other.redis.aclose()


async def test_restart_mid_chain_continues_on_time(container: Container, settings: Settings) -> None:
    events = Events()
    await issue(container, alert())
    t0 = T0.timestamp()
    await Escalator(container, events, consumer="before").tick(t0 + 120)
    restarted = bootstrap(settings, logging=False)  # nothing carried over but Redis
    try:
        after = Escalator(restarted, events, consumer="after")
        assert await after.tick(t0 + 200) == []
        (step,) = await after.tick(t0 + 240)
        assert (step.step, step.level) == (2, "city")
    finally:
        await restarted.redis.aclose()


async def test_upgrade_restarts_at_the_new_tiers_timeouts_and_cancel_ends(container: Container) -> None:
    c, events = container, Events()
    t0 = T0.timestamp()
    await issue(c, alert(Tier.yellow))  # yellow: 15 minutes a level
    assert (await c.escalation.state(alert().alert_id))["next_due"] == t0 + 900
    red = alert(Tier.red, 2, "Update").model_copy(update={"issued_at": T0 + timedelta(seconds=60)})
    await issue(c, red)
    state = await c.escalation.state(alert().alert_id)
    assert (state["tier"], state["step"], state["next_due"]) == ("red", 0, t0 + 60 + 120)
    (step,) = await Escalator(c, events).tick(t0 + 180)
    assert step.level == "district"
    await issue(c, alert(Tier.red, 3, "Cancel").model_copy(update={"issued_at": T0 + timedelta(seconds=200)}))
    assert await Escalator(c, events).tick(t0 + 10_000) == []
    assert (await c.escalation.state(alert().alert_id))["state"] == "cancelled"


async def test_blue_does_not_escalate(container: Container) -> None:
    await issue(container, alert(Tier.blue))
    assert (await container.escalation.state(alert().alert_id))["state"] == "none"
