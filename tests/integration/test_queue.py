"""Delivery queues on the real Redis: idempotent enqueue, lanes, supersede, expiry, reclaim."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis.exceptions import ResponseError

from consumers.notifier import Outcome, Result
from consumers.sinks import FileSink, read_sink
from consumers.worker import RateLimit, RetryPolicy, Worker
from tests.conftest import lane_entries
from warning import redis_client
from warning.bootstrap import Container
from warning.models import AlertVersion, DeliveryJob, Tier
from warning.pipeline.fanout import fan_out

pytestmark = pytest.mark.integration


def job(recipient: str, tier: Tier = Tier.red, version: int = 1, alert_id: str = "a1",
        expires_in: float = 3600, channel: str = "sms", fallback: list[tuple[str, str]] | None = None) -> DeliveryJob:
    now = time.time()
    return DeliveryJob(alert_id=alert_id, version=version, tier=tier, msg_type="Alert", channel=channel,
                       recipient=recipient, address="+8610000000001", text=f"hello {recipient}",
                       expires=now + expires_in, issued_at=now, fallback=fallback or [])


def alert(tier: Tier, version: int, msg_type: str = "Alert", alert_id: str = "a1") -> AlertVersion:
    now = datetime.now(UTC)
    return AlertVersion(alert_id=alert_id, key="gas:440305001", hazard="gas", area="440305001", tier=tier,
                        version=version, msg_type=msg_type, caused_at=now, issued_at=now,  # type: ignore[arg-type]
                        expires=now + timedelta(hours=1))


class RecordingNotifier:
    """A fake provider that records what it was handed (Cosmic Python's fakes, not mocks)."""

    def __init__(self, channel: str = "sms", outcomes: dict[str, Outcome] | None = None) -> None:
        self.channel = channel
        self.sent: list[DeliveryJob] = []
        self.outcomes = outcomes or {}

    async def send_batch(self, jobs: Sequence[DeliveryJob]) -> list[Result]:
        self.sent.extend(jobs)
        return [Result(self.outcomes.get(j.recipient, Outcome.delivered)) for j in jobs]

    async def close(self) -> None:
        pass


FAST = RetryPolicy(base_s=0.01, cap_s=0.05)


async def drain(container: Container, notifier: RecordingNotifier, **kw: Any) -> int:
    worker = Worker(container.store, notifier, batch=100, retry=FAST, **kw)  # type: ignore[arg-type]
    return await worker.run(asyncio.Event(), burst=True)


async def test_enqueue_twice_queues_once(container: Container) -> None:
    jobs = [job(f"r{i}") for i in range(2345)]  # scripts of 100, 400, 500, 500, 500 and 345 jobs
    assert await container.store.queue.enqueue(jobs, batch=500) == 2345
    assert await container.store.queue.enqueue(jobs, batch=500) == 0  # a replayed partition
    assert len(await lane_entries(container, "sms", Tier.red)) == 2345
    notifier = RecordingNotifier()
    await drain(container, notifier)
    assert Counter(j.recipient for j in notifier.sent) == Counter({f"r{i}": 1 for i in range(2345)})


async def test_a_partly_replayed_batch_queues_only_its_new_recipients_once(container: Container) -> None:
    """The script checks a batch's members at once: the known ones are skipped, and a
    recipient twice in the same batch is queued once."""
    assert await container.store.queue.enqueue([job(f"r{i}") for i in range(10)], batch=500) == 10
    again = [job(f"r{i}") for i in range(5, 15)] + [job("r12"), job("r3")]
    assert await container.store.queue.enqueue(again, batch=500) == 5
    entries = await lane_entries(container, "sms", Tier.red)
    recipients = [orjson.loads(fields["job"])["recipient"] for _, fields in entries]
    assert Counter(recipients) == Counter({f"r{i}": 1 for i in range(15)})
    counts = await container.store.receipts.counts("a1", "sms")
    assert (counts["queued"], counts["targeted"]) == (15, 15)


async def test_the_enqueue_script_cuts_lines_exactly_and_refuses_a_line_without_its_member(
        container: Container) -> None:
    """The script's own parse: empty lines skipped, each job whole (its JSON may hold spaces),
    and a line without ``member TAB`` refuses the whole call before it writes anything."""
    queue = container.store.queue
    keys = queue._enqueue_keys("a1", 1, "sms", Tier.red, 0)
    one, two = b'{"recipient": "r1", "x": "a b"}', b'{"recipient": "r2"}'
    batch = b"\n".join([b"sms:r1\t" + one, b"", b"sms:r2\t" + two, b""])
    assert await queue._enqueue(keys=keys, args=[60, batch]) == 2
    with pytest.raises(ResponseError, match="without its member and tab"):
        await queue._enqueue(keys=keys, args=[60, b"sms:r3\t{}\n" + b'{"recipient": "r4"}'])
    entries = await lane_entries(container, "sms", Tier.red)
    assert [fields["job"] for _, fields in entries] == [one.decode(), two.decode()]
    assert await queue._enqueue(keys=keys, args=[60, b"sms:r3\t{}"]) == 1  # refused before, so queued now


async def test_red_lane_drains_before_blue(container: Container) -> None:
    await container.store.queue.enqueue([job(f"b{i}", Tier.blue, alert_id="ab") for i in range(5)])
    await container.store.queue.enqueue([job(f"r{i}", Tier.red, alert_id="ar") for i in range(5)])
    notifier = RecordingNotifier()
    await drain(container, notifier)
    assert [j.tier for j in notifier.sent] == [Tier.red] * 5 + [Tier.blue] * 5


async def test_superseded_and_expired_jobs_are_recorded_not_sent(container: Container) -> None:
    await container.store.alerts.record_alert(alert(Tier.yellow, 1))
    await container.store.queue.enqueue([job(f"y{i}", Tier.yellow, version=1) for i in range(3)])
    await container.store.alerts.record_alert(alert(Tier.red, 2, "Update"))  # red exists before they drain
    await container.store.queue.enqueue([job("late", Tier.red, version=2, expires_in=-1)])
    notifier = RecordingNotifier()
    await drain(container, notifier)
    assert notifier.sent == []
    counts = await container.store.receipts.counts("a1", "sms")
    assert {k: int(v) for k, v in counts.items() if int(v)} == {"targeted": 4, "superseded": 3, "expired": 1}
    receipt = await container.redis.hgetall(container.keys.delivery(job("y0", version=1).delivery_id))
    assert receipt["status"] == "superseded" and receipt["reason"] == "a newer version of the alert exists"



async def test_fanned_out_jobs_of_a_superseded_version_are_dropped_with_the_version_read_alongside(
        container: Container) -> None:
    """Fan-out's jobs are stubs decoded with their alert record, which says the current
    version too: no second read of it before the superseded ones are dropped."""
    orange = alert(Tier.orange, 1, alert_id="gas-440305001-s")
    targeted = await fan_out(container, orange)
    await container.store.alerts.record_alert(alert(Tier.red, 2, "Update", alert_id="gas-440305001-s"))
    reads: list[set[str]] = []
    separate_read = container.store.alerts.current_versions

    async def counted(alert_ids: Any) -> dict[str, int]:
        reads.append(set(alert_ids))
        return await separate_read(reads[-1])

    container.store.alerts.current_versions = counted  # type: ignore[method-assign]
    notifier = RecordingNotifier()
    await drain(container, notifier)
    assert notifier.sent == [] and reads == []
    counts = await container.store.receipts.counts("gas-440305001-s", "sms")
    assert int(counts["superseded"]) == int(counts["targeted"]) > 0 and targeted > 0

async def test_a_dead_consumers_jobs_are_reclaimed_and_sent_once(container: Container) -> None:
    await container.store.queue.enqueue([job(f"r{i}") for i in range(20)])
    await container.store.queue.ensure_group("sms")
    # Consumer "dead" claims 20 jobs and never acknowledges them (kill -9 after XREADGROUP).
    taken = await container.store.queue.read("sms", "dead", count=20, block_ms=100)
    assert len(taken) == 20
    notifier = RecordingNotifier()
    worker = Worker(container.store, notifier, batch=100, visibility_timeout_s=0.2, consumer="alive")  # type: ignore[arg-type]
    await asyncio.sleep(0.25)  # the visibility timeout itself is what is under test
    await worker.run(asyncio.Event(), burst=True)
    assert sorted(j.recipient for j in notifier.sent) == sorted(f"r{i}" for i in range(20))


async def test_a_job_already_sent_is_not_sent_again_after_reclaim(container: Container) -> None:
    await container.store.queue.enqueue([job("r1")])
    await container.store.queue.ensure_group("sms")
    (claimed,) = await container.store.queue.read("sms", "crashy", count=1, block_ms=100)
    # It crashed after the provider took it and the receipt said so, before XACK.
    await container.store.receipts.transition([claimed.job], "sent")
    notifier = RecordingNotifier()
    worker = Worker(container.store, notifier, visibility_timeout_s=0.01, consumer="alive")  # type: ignore[arg-type]
    await asyncio.sleep(0.02)
    await worker.run(asyncio.Event(), burst=True)
    assert notifier.sent == []
    stats = await container.store.queue.queue_stats("sms")
    assert stats["lanes"]["red"]["pending"] == 0


async def test_a_batch_the_sink_took_before_its_consumer_died_is_reconciled_not_resent(
        container: Container, tmp_path: Any) -> None:
    await container.store.queue.enqueue([job(f"r{i}") for i in range(30)])
    await container.store.queue.ensure_group("sms")
    sink = FileSink("sms", tmp_path)
    taken = await container.store.queue.read("sms", "dead", count=20, block_ms=100)
    # The dead consumer marked its batch "sending" and the provider took 15 of the 20 before
    # the kill -9; nothing was marked sent or acknowledged.
    await container.store.receipts.transition([c.job for c in taken], "sending")
    await sink.send_batch([c.job for c in taken[:15]])
    worker = Worker(container.store, sink, batch=100, visibility_timeout_s=0.05, consumer="alive")
    await asyncio.sleep(0.06)
    await worker.run(asyncio.Event(), burst=True)
    arrived = Counter(str(m["recipient"]) for m in read_sink(sink.path))
    assert arrived == Counter(f"r{i}" for i in range(30))  # each once: 15 reconciled, 15 sent now
    statuses = await container.store.receipts.statuses([c.job for c in taken])
    assert statuses == ["sent"] * 20


async def test_marks_after_a_handoff_wait_for_redis_instead_of_abandoning_the_batch(container: Container) -> None:
    """Redis restarting right after the provider took a batch: the batch is recorded when
    Redis answers again, so it is not reclaimed and sent a second time."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from warning.delivery.receipts import Receipts

    class RestartingRedis(Receipts):
        failures = 3

        async def move(self, jobs: Sequence[DeliveryJob], status: str, reason: str = "", **detail: Any) -> None:
            if status == "sent" and self.failures:
                self.failures -= 1
                raise RedisConnectionError("Connection refused")
            await super().move(jobs, status, reason, **detail)

    await container.store.queue.enqueue([job(f"r{i}") for i in range(10)])
    notifier = RecordingNotifier()
    receipts = RestartingRedis(container.store, None)
    worker = Worker(container.store, notifier, batch=100, visibility_timeout_s=0.05, consumer="c",
                    receipts=receipts)  # type: ignore[arg-type]
    await worker.run(asyncio.Event(), burst=True)
    assert receipts.failures == 0
    assert sorted(j.recipient for j in notifier.sent) == sorted(f"r{i}" for i in range(10))  # once each
    assert await container.store.receipts.statuses(notifier.sent) == ["sent"] * 10


async def test_retryable_is_retried_and_permanent_goes_to_dead_letters(container: Container) -> None:
    await container.store.queue.enqueue([job("flaky"), job("bad"), job("ok")])

    class Flaky(RecordingNotifier):
        async def send_batch(self, jobs: Sequence[DeliveryJob]) -> list[Result]:
            self.sent.extend(jobs)
            out = []
            for j in jobs:
                if j.recipient == "bad":
                    out.append(Result(Outcome.permanent, "invalid number"))
                elif j.recipient == "flaky" and j.attempt < 3:
                    out.append(Result(Outcome.retryable, "429"))
                else:
                    out.append(Result(Outcome.delivered))
            return out

    notifier = Flaky()
    await drain(container, notifier)
    assert Counter(j.recipient for j in notifier.sent) == {"flaky": 3, "bad": 1, "ok": 1}
    assert [j.attempt for j in notifier.sent if j.recipient == "flaky"] == [1, 2, 3]
    dead = await container.redis.xrange(container.keys.dead_letters("sms"))
    assert len(dead) == 1 and '"reason":"invalid number"' in dead[0][1]["entry"]
    counts = await container.store.receipts.counts("a1", "sms")
    assert {k: int(v) for k, v in counts.items() if int(v)} == {"targeted": 3, "sent": 2, "failed": 1}


async def test_a_raising_notifier_does_not_kill_the_loop(container: Container) -> None:
    await container.store.queue.enqueue([job("r1")])

    class Broken(RecordingNotifier):
        calls = 0

        async def send_batch(self, jobs: Sequence[DeliveryJob]) -> list[Result]:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("provider SDK blew up")
            return await super().send_batch(jobs)

    notifier = Broken()
    await drain(container, notifier)
    assert [j.recipient for j in notifier.sent] == ["r1"] and notifier.sent[0].attempt == 2


async def test_fan_out_is_idempotent_and_lands_in_the_sink(container: Container) -> None:
    red = alert(Tier.red, 1, alert_id="gas-440305001-x")
    first = await fan_out(container, red)
    again = await fan_out(container, red)
    assert first == 13 and again == 0  # 11 people, and the area's cells in two languages
    sink = FileSink("sms", container.settings.sink_dir)
    await Worker(container.store, sink).run(asyncio.Event(), burst=True)
    await sink.close()
    messages = read_sink(sink.path)
    assert Counter(m["recipient"] for m in messages) == {
        "gw-nt-01": 1, "off-nt": 1, "off-ns": 1, "off-sz": 1, "res-nt-02": 1}
    assert all(str(m["text"]).startswith("【红色预警】南头街道发布燃气泄漏红色预警") for m in messages)


async def test_a_batch_fans_out_each_alerts_latest_version_and_records_every_version(container: Container) -> None:
    """What the lifecycle agent fans out from one batch: v1 and v2 of one alert and another
    alert in one batch. v1 is recorded (the history stays whole) but not sent: v2 supersedes
    it. Each alert's escalation chain is timed from its own issue."""
    from warning.pipeline.fanout import fan_out_batch

    v1 = alert(Tier.orange, 1, alert_id="gas-440305001-b")
    v2 = alert(Tier.red, 2, msg_type="Update", alert_id="gas-440305001-b")
    other = alert(Tier.red, 1, alert_id="gas-440305001-c")
    added = await fan_out_batch(container, [v1, other, v2])
    # 11 each, and each red alert's cell broadcast (one area, two languages); a replay adds none
    assert added == 26 and await fan_out_batch(container, [v1, other, v2]) == 0
    queued = await lane_entries(container, "sms", Tier.red)
    versions = Counter((orjson.loads(f["job"])["alert_id"], orjson.loads(f["job"])["version"]) for _, f in queued)
    assert set(versions) == {("gas-440305001-b", 2), ("gas-440305001-c", 1)}
    assert not await lane_entries(container, "sms", Tier.orange)
    record = await container.redis.hgetall(container.keys.alert("gas-440305001-b"))
    assert record["version"] == "2" and {"version_json:1", "version_json:2"} <= set(record)
    chain = await container.redis.hgetall(container.keys.escalation("gas-440305001-c"))
    assert float(chain["started"]) == other.issued_at.timestamp()



async def test_fan_out_targets_with_a_grid_registry_imported_while_it_runs(container: Container,
                                                                            tmp_path: Path) -> None:
    """Fan-out reads the registry's version in the round trip that records the alert: a
    re-import is used from the next alert on, with the new grid's staff."""

    from warning.targeting.importer import import_recipients, store_grids

    client = redis_client.connect_sync(container.settings.redis_url)
    new_grid = (b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"grid_id":"440305009001",'
                b'"name":"new"},"geometry":{"type":"Polygon","coordinates":[[[113.0,22.0],[113.1,22.0],'
                b'[113.1,22.1],[113.0,22.0]]]}}]}')
    people = tmp_path / "w9.csv"
    people.write_text("id,role,phone,push_token,channels,grid,grids,level,jurisdiction,opted_in\n"
                      "w9,grid_worker,+8613800000009,,sms,,440305009001,,,\n")
    assert import_recipients(client, container.keys, people).upserted == 1
    assert store_grids(client, container.keys, new_grid, "new.geojson") == 1
    client.close()
    assert "440305009001" not in {g.id for g in container.grids.grids}  # the worker still has the old one
    red = alert(Tier.red, 1, alert_id="gas-440305009001-x").model_copy(update={"area": "440305009001"})
    assert await fan_out(container, red) >= 1
    queued = await lane_entries(container, "sms", Tier.red)
    jobs = [orjson.loads(f["job"]) for _, f in queued]
    assert {(j["recipient"], j["address"]) for j in jobs if j["recipient"] == "w9"} == {("w9", "+8613800000009")}
    assert await container.redis.smembers(container.keys.alert_grids("gas-440305009001-x")) == {"440305009001"}

async def test_retries_wait_in_the_delayed_set_and_give_up_at_the_deadline(container: Container) -> None:
    await container.store.queue.enqueue([job("flaky")])

    class AlwaysBusy(RecordingNotifier):
        async def send_batch(self, jobs: Sequence[DeliveryJob]) -> list[Result]:
            self.sent.extend(jobs)
            return [Result(Outcome.retryable, "429 Too Many Requests") for _ in jobs]

    notifier = AlwaysBusy()
    worker = Worker(container.store, notifier, retry=RetryPolicy(max_attempts=3, base_s=0.01, cap_s=0.02))
    await worker.run(asyncio.Event(), burst=True)
    assert [j.attempt for j in notifier.sent] == [1, 2, 3]
    (dead,) = await container.redis.xrange(container.keys.dead_letters("sms"))
    assert '"reason":"429 Too Many Requests"' in dead[1]["entry"]
    assert await container.store.queue.delayed("sms") == 0


async def test_a_permanent_push_failure_falls_back_to_sms(container: Container) -> None:
    await container.store.queue.enqueue([job("res-1", channel="push", fallback=[("sms", "+8613800000009")])])
    push = RecordingNotifier("push", outcomes={"res-1": Outcome.permanent})
    sms = RecordingNotifier("sms")
    await drain(container, push)
    await drain(container, sms)
    assert [(j.channel, j.recipient) for j in push.sent] == [("push", "res-1")]
    assert [(j.channel, j.address, j.fallback) for j in sms.sent] == [("sms", "+8613800000009", [])]
    push_counts = await container.store.receipts.counts("a1", "push")
    sms_counts = await container.store.receipts.counts("a1", "sms")
    assert (int(push_counts["failed"]), int(sms_counts["sent"])) == (1, 1)


async def test_two_consumers_sharing_a_50_per_second_bucket_stay_within_it(container: Container) -> None:
    await container.store.queue.enqueue([job(f"r{i}") for i in range(150)])
    stamps: list[float] = []

    class Clocked(RecordingNotifier):
        async def send_batch(self, jobs: Sequence[DeliveryJob]) -> list[Result]:
            stamps.extend(time.monotonic() for _ in jobs)
            return await super().send_batch(jobs)

    rate = RateLimit(per_s=50, burst=50)
    workers = [Worker(container.store, Clocked(), batch=20, consumer=f"c{i}", rate=rate, retry=FAST)
               for i in range(2)]
    await asyncio.gather(*(w.run(asyncio.Event(), burst=True) for w in workers))
    assert len(stamps) == 150
    stamps.sort()
    start = stamps[0]
    # Token bucket: at any moment, at most the burst plus what the rate refilled since the start.
    assert all(n + 1 <= 50 + 50 * (t - start) + 2 for n, t in enumerate(stamps))
    assert stamps[-1] - start >= (150 - 50) / 50 * 0.95


async def test_queue_stats_show_depth_age_and_dead_letters(container: Container) -> None:
    await container.store.queue.enqueue([job(f"r{i}", Tier.orange) for i in range(7)])
    stats = await container.store.queue.queue_stats("sms")
    assert stats["lanes"]["orange"]["depth"] == 7 and stats["lanes"]["red"]["depth"] == 0
    assert stats["lanes"]["orange"]["oldest_age_s"] >= 0 and stats["dead"] == 0
    counts = await container.store.receipts.counts("a1", "sms")
    assert int(counts["targeted"]) == 7


async def test_a_batch_of_many_alerts_reads_each_alerts_own_text_and_cap(container: Container) -> None:
    """A burst of small alerts: one consumer batch holds jobs of many alerts, whose shared
    fields and CAP are read for the whole batch at once. Each job still gets its own alert's."""
    from consumers.channels.build import AlertLookup
    from warning.pipeline.fanout import fan_out_batch

    red, yellow = alert(Tier.red, 1, alert_id="gas-440305001-r"), alert(Tier.yellow, 1, alert_id="gas-440305001-y")
    bumped = alert(Tier.orange, 1, alert_id="gas-440305001-o")
    await fan_out_batch(container, [red, yellow, bumped])
    await container.store.alerts.record_alert(alert(Tier.red, 2, msg_type="Update", alert_id="gas-440305001-o"))
    await container.store.queue.ensure_group("sms")
    claimed = await container.store.queue.read("sms", "many", count=100, block_ms=100)
    texts = {(c.job.alert_id, c.job.recipient): c.job.text for c in claimed}
    assert {a for a, _ in texts} == {"gas-440305001-r", "gas-440305001-y", "gas-440305001-o"}
    assert all(t.startswith("【红色预警】") for (a, _), t in texts.items() if a == "gas-440305001-r")
    assert all(t.startswith("【黄色预警】") for (a, _), t in texts.items() if a == "gas-440305001-y")

    lookup = AlertLookup(container)
    wanted = [("gas-440305001-r", 1), ("gas-440305001-y", 1), ("gas-440305001-o", 1), ("nowhere", 1)]
    found = await lookup(iter(wanted))  # any iterable, read once
    assert set(found) == set(wanted)
    assert f"<identifier>{red.identifier}</identifier>" in found["gas-440305001-r", 1]["cap"]
    assert "<severity>Moderate</severity>" in found["gas-440305001-y", 1]["cap"]
    assert found["gas-440305001-o", 1] == {"hazard": "gas", "area": "440305001"}  # superseded: no CAP
    assert found["nowhere", 1] == {}
    assert set(lookup.cache) == {("gas-440305001-r", 1), ("gas-440305001-y", 1)}  # only complete renderings
