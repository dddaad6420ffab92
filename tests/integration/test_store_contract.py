"""One contract, two implementations: every test here runs against the in-memory fakes
(tests/fakes/store.py) and against the Redis repositories (warning/store/ with 4 shard
lanes, the escalation timers, the recipient directory) on the real Redis of this run —
one Redis, Sentinel or a cluster — so the fakes other unit tests lean on answer as Redis
does."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import orjson
import pytest

from tests.fakes.directory import FakeRecipientStore
from tests.fakes.escalation import FakeEscalationTimers
from tests.fakes.store import FakeStore
from warning import redis_client
from warning.keys import Keys
from warning.models import AlertVersion, DeliveryJob, Tier
from warning.response.escalation import EscalationTimers
from warning.store import DeliveryStore
from warning.targeting.directory import Person
from warning.targeting.importer import import_recipients
from warning.targeting.recipients import RecipientStore

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


@pytest.fixture(params=["fake", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "fake":
        yield FakeStore.create()
        return
    settings = request.getfixturevalue("settings")  # the test's own prefix, removed afterwards
    client = redis_client.connect(settings.redis_url, decode_responses=True)
    try:
        yield DeliveryStore.create(client, Keys(settings.redis_prefix, shards=4))
    finally:
        await client.aclose()


def alert(version: int, tier: Tier, alert_id: str = "a1",
          msg_type: Literal["Alert", "Update", "Cancel"] = "Alert") -> AlertVersion:
    return AlertVersion(alert_id=alert_id, key=f"rain|{alert_id}", hazard="rain", area="440305", tier=tier,
                        version=version, msg_type=msg_type, caused_at=NOW,
                        issued_at=NOW - timedelta(minutes=10 - version),
                        expires=NOW + timedelta(hours=1), cause="station 7: 60 mm/h")


def job(recipient: str, tier: Tier = Tier.orange, alert_id: str = "a1", version: int = 1,
        channel: str = "sms") -> DeliveryJob:
    return DeliveryJob(alert_id=alert_id, version=version, tier=tier, msg_type="Alert", channel=channel,
                       recipient=recipient, address=f"+86138{recipient[-4:]:0>8}", text=f"{tier.value} for {recipient}",
                       expires=time.time() + 3600, issued_at=time.time())


async def test_an_older_version_never_rolls_a_record_back_and_the_loudest_tier_is_kept(store: Any) -> None:
    assert await store.alerts.record_alerts([alert(1, Tier.red), alert(2, Tier.orange)]) == [Tier.red, Tier.red]
    assert await store.alerts.record_alert(alert(1, Tier.blue)) is None
    summary = await store.alerts.summary("a1")
    assert (summary.version, summary.tier, summary.hazard, summary.release) == (2, "orange", "rain",
                                                                               ["staff", "residents"])
    assert [v["version"] for v in await store.alerts.versions("a1", 2)] == [1, 2]
    assert (await store.alerts.latest("a1")).tier is Tier.orange
    assert await store.alerts.current_versions(["a1", "nobody"]) == {"a1": 2, "nobody": 0}
    assert await store.alerts.summaries(["nobody"]) == [None]
    assert await store.alerts.active_ids(time.time()) == ["a1"]


async def test_a_cancel_leaves_the_active_index(store: Any) -> None:
    await store.alerts.record_alerts([alert(1, Tier.red, "a1"), alert(1, Tier.red, "a2")])
    await store.alerts.record_alert(alert(2, Tier.red, "a2", msg_type="Cancel"))
    assert await store.alerts.active_ids(time.time()) == ["a1"]


async def test_each_recipient_is_queued_once_per_version_and_read_loudest_first(store: Any) -> None:
    assert await store.queue.enqueue([job("r1", Tier.blue), job("r2", Tier.red)]) == 2
    assert await store.queue.enqueue([job("r1", Tier.blue), job("r2", Tier.red)]) == 0  # a replay
    assert await store.queue.enqueue([job("r1", Tier.blue, version=2)]) == 1  # a new version is news
    await store.queue.ensure_group("sms")
    claimed = await store.queue.read("sms", "c1", 10, 100)
    assert (claimed[0].job.recipient, claimed[0].job.tier, claimed[0].job.version) == ("r2", Tier.red, 1)
    assert sorted((c.job.recipient, c.job.version) for c in claimed) == [("r1", 1), ("r1", 2), ("r2", 1)]
    assert claimed[0].job.text == "red for r2"
    assert await store.receipts.counts("a1", "sms") == {"queued": 3, "targeted": 3}
    await store.queue.ack_entries("sms", claimed)
    assert await store.queue.read("sms", "c1", 10, 10) == []


async def test_a_job_a_consumer_held_too_long_is_reclaimed_by_another(store: Any) -> None:
    await store.queue.enqueue([job("r1")])
    await store.queue.ensure_group("sms")
    first = await store.queue.read("sms", "dead-consumer", 10, 100)
    assert [c.job.recipient for c in first] == ["r1"]
    assert await store.queue.reclaim("sms", "c2", 60_000, 10) == []  # not idle long enough
    again: list[Any] = []
    deadline = time.monotonic() + 10
    while not again and time.monotonic() < deadline:  # idle 10 ms, as the server's clock counts it
        again = await store.queue.reclaim("sms", "c2", 10, 10)
    assert [(c.job.recipient, c.entry_id) for c in again] == [("r1", first[0].entry_id)]


async def test_a_retry_waits_in_its_delayed_set_then_returns_to_its_lane_with_the_next_attempt(store: Any) -> None:
    await store.queue.ensure_group("sms")
    await store.queue.retry_later([(job("r1"), time.time() + 60), (job("r2", Tier.red), time.time() - 1)])
    assert await store.queue.delayed("sms") == 2
    assert await store.queue.promote_due("sms", time.time()) == 1
    claimed = await store.queue.read("sms", "c1", 10, 100)
    assert [(c.job.recipient, c.job.attempt) for c in claimed] == [("r2", 2)]
    assert await store.queue.delayed("sms") == 1
    await store.queue.dead_letter(claimed, "gave up")
    stats = await store.queue.queue_stats("sms")
    assert (stats["delayed"], stats["dead"], stats["lanes"]["red"]["depth"]) == (1, 1, 1)


async def test_statuses_move_once_and_a_final_receipt_is_not_overwritten_by_sent(store: Any) -> None:
    jobs = [job("r1"), job("r2")]
    await store.queue.enqueue(jobs)
    await store.receipts.transition(jobs, "sending")
    await store.receipts.transition(jobs, "sending")  # a retry of the same mark moves nothing
    await store.receipts.transition(jobs[:1], "delivered")
    await store.receipts.transition(jobs, "sent")  # r1's receipt overtook the worker's mark
    assert await store.receipts.statuses(jobs) == ["delivered", "sent"]
    assert await store.receipts.statuses_of(["nobody"]) == [None]
    counts = {k: v for k, v in (await store.receipts.counts("a1", "sms")).items() if v}
    assert counts == {"targeted": 2, "delivered": 1, "sent": 1}


async def test_an_awaited_receipt_settles_once_and_an_overdue_one_goes_to_one_caller(store: Any) -> None:
    late, prompt = job("r1"), job("r2")
    await store.receipts.await_receipt([late], time.time() - 1)
    await store.receipts.await_receipt([prompt], time.time() + 60)
    settled = await store.receipts.settle("sms", prompt.delivery_id)
    assert settled is not None and settled.recipient == "r2"
    assert await store.receipts.settle("sms", prompt.delivery_id) is None
    assert [j.recipient for j in await store.receipts.overdue("sms", time.time())] == ["r1"]
    assert await store.receipts.overdue("sms", time.time()) == []


async def test_a_senders_bucket_grants_its_burst_then_says_how_long_to_wait(store: Any) -> None:
    granted, wait = await store.rates.take_tokens("twilio", 15, 10.0, 10.0)
    assert granted == 10 and 0.4 < wait <= 0.5
    granted, _ = await store.rates.take_tokens("other", 3, 10.0, 10.0)
    assert granted == 3


@pytest.fixture(params=["fake", "redis"])
async def timers(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    levels, timeouts = ["township", "district", "city"], {"red": 60.0, "orange": 120.0}
    if request.param == "fake":
        yield FakeEscalationTimers(levels, timeouts)
        return
    settings = request.getfixturevalue("settings")
    client = redis_client.connect(settings.redis_url, decode_responses=True)
    try:
        yield EscalationTimers(client, Keys(settings.redis_prefix), levels, timeouts)
    finally:
        await client.aclose()


async def test_a_chain_climbs_a_level_per_timeout_once_and_ends_exhausted_or_cancelled(timers: Any) -> None:
    t0 = time.time()
    assert await timers.on_version(alert(1, Tier.orange), now=t0) == "started"
    assert await timers.on_version(alert(2, Tier.orange), now=t0 + 1) == "unchanged"
    assert await timers.on_version(alert(3, Tier.red), now=t0) == "restarted"  # an upgrade: the red clock
    assert await timers.on_version(alert(1, Tier.blue, alert_id="quiet"), now=t0) == "none"
    assert await timers.fire_due(t0 + 59) == 0
    assert await timers.fire_due(t0 + 60) == 1
    assert await timers.fire_due(t0 + 60) == 0  # a second escalator racing for the same step
    state = await timers.state("a1")
    assert (state["state"], state["step"], state["level"], state["next_level"]) == ("running", 1, "district", "city")
    assert state["next_due"] == pytest.approx(t0 + 120)
    assert await timers.fire_due(t0 + 120) == 1
    assert (await timers.state("a1"))["state"] == "exhausted"
    assert await timers.on_version(alert(1, Tier.red, alert_id="a2"), now=t0) == "started"
    assert await timers.on_version(alert(2, Tier.red, alert_id="a2", msg_type="Cancel"), now=t0) == "cancelled"
    assert (await timers.state("a2"))["state"] == "cancelled" and await timers.fire_due(t0 + 600) == 0
    assert await timers.state("nobody") == {"state": "none"}


PEOPLE = [
    Person(id="res-1", role="resident", grid="g1", phone="+8613800000001"),
    Person(id="res-2", role="resident", grid="g1", phone="+8613800000002", push_token="tok-2",
           channels=["push", "sms"], opted_in=True),
    Person(id="res-3", role="resident", grid="g2", push_token="tok-3", channels=["push"]),
    Person(id="w-1", role="grid_worker", grids=["g1", "g2"], phone="+8613900000001", name="王网格"),
    Person(id="o-1", role="officer", level="district", jurisdiction="440305", phone="+8613700000001"),
]


@pytest.fixture(params=["fake", "redis"])
async def directory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """The same people in each: the fake filled as an import fills Redis; Redis by the importer."""
    if request.param == "fake":
        fake = FakeRecipientStore()
        for person in PEOPLE:
            fake.add(person)
        yield fake
        return
    settings = request.getfixturevalue("settings")
    keys = Keys(settings.redis_prefix)
    (path := tmp_path / "people.jsonl").write_bytes(b"\n".join(p.model_dump_json().encode() for p in PEOPLE))
    sync = redis_client.connect_sync(settings.redis_url)
    try:
        assert import_recipients(sync, keys, path).upserted == len(PEOPLE)
    finally:
        sync.close()
    client = redis_client.connect(settings.redis_url, decode_responses=True)
    try:
        yield RecipientStore(client, keys)
    finally:
        await client.aclose()


async def test_the_directory_answers_fan_out_with_stubs_workers_and_officers(directory: Any) -> None:
    stubs = sorted(await directory.resident_stubs(["g1", "g2"], opted_in_only=False))
    assert [s.split(b"\t")[:2] for s in stubs] == [[b"push", b"res-2"], [b"push", b"res-3"], [b"sms", b"res-1"]]
    assert orjson.loads(stubs[0].split(b"\t", 2)[2])["fallback"] == [["sms", "+8613800000002"]]
    assert [s.split(b"\t")[1] for s in await directory.resident_stubs(["g1"], opted_in_only=True)] == [b"res-2"]
    assert [w["name"] for w in await directory.workers(["g2"])] == ["王网格"]
    assert [(o["id"], o["level"]) for o in await directory.officers()] == [("o-1", "district")]
    workers, officers = await directory.staff(["g2", "g1", "g1"])
    assert {g: [w["id"] for w in ws] for g, ws in workers.items()} == {"g1": ["w-1"], "g2": ["w-1"]}
    assert [o["id"] for o in officers] == ["o-1"]


async def test_a_dead_address_is_forgotten_once_and_the_next_channel_takes_over(directory: Any) -> None:
    assert await directory.forget_address("res-2", "push", "tok-2")
    assert not await directory.forget_address("res-2", "push", "tok-2")
    (stub,) = await directory.resident_stubs(["g1"], opted_in_only=True)
    channel, _, fields = stub.split(b"\t", 2)
    assert (channel, orjson.loads(fields)["address"]) == (b"sms", "+8613800000002")
    assert await directory.forget_address("res-3", "push", "tok-3")  # its only channel: out of the index
    assert await directory.resident_stubs(["g2"], opted_in_only=False) == []
    assert await directory.forget_address("w-1", "sms", "+8613900000001")
    assert "phone" not in (await directory.workers(["g1"]))[0]
    assert not await directory.forget_address("nobody", "sms", "+8613800000009")
