"""Each channel adapter with its real client library against the local provider sandbox:
success, retryable failure, permanent failure, timeout; and the callbacks' signatures."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from twilio.request_validator import RequestValidator

from consumers.channels.build import build_notifier
from consumers.notifier import Notifier, Outcome
from consumers.sinks import read_sink
from tests.conftest import seed, settings_env, wait_for
from warning.bootstrap import Container, bootstrap
from warning.config import Settings
from warning.delivery.providers import SANDBOX_TWILIO_TOKEN
from warning.models import DeliveryJob, Tier
from warning.runner import Processes, wait_http

pytestmark = pytest.mark.integration


@pytest.fixture
def sandboxed(settings: Settings) -> Settings:
    return settings.model_copy(update={"providers": "sandbox", "provider_timeout_s": 1.0})


@pytest.fixture
def servers(sandboxed: Settings, tmp_path: Path) -> Iterator[Processes]:
    """The provider sandbox and our API (for the callbacks), as the pipeline runs them."""
    from warning.feeds import ensure_topics

    ensure_topics(sandboxed)
    with Processes(tmp_path / "logs", env=settings_env(sandboxed)) as procs:
        procs.start("sandbox", "sandbox")
        procs.start("api", "api")
        wait_http(f"{sandboxed.sandbox_url}/healthz", procs)
        wait_http(f"{sandboxed.api_url}/healthz", procs)
        yield procs


@pytest.fixture
async def sandbox_container(sandboxed: Settings) -> AsyncIterator[Container]:
    seed(sandboxed)
    c = bootstrap(sandboxed, logging=False)
    yield c
    await c.redis.aclose()


RED_TEXT = "【红色预警】南头街道发布燃气泄漏红色预警。回复1确认。编号ABCDEv1"


def job(channel: str, address: str, recipient: str = "res-1", tier: Tier = Tier.red,
        text: str = RED_TEXT, ttl: float = 600) -> DeliveryJob:
    now = time.time()
    return DeliveryJob(alert_id="gas-440305001-20261125T100000Z", version=1, tier=tier, msg_type="Alert",
                       channel=channel, recipient=recipient, address=address, text=text, expires=now + ttl,
                       issued_at=now)


async def send(notifier: Notifier, jobs: list[DeliveryJob]) -> list[Any]:
    try:
        return list(await notifier.send_batch(jobs))
    finally:
        await notifier.close()


async def test_twilio_sms_outcomes(servers: Processes, sandbox_container: Container) -> None:
    sms = build_notifier("sms", sandbox_container)
    jobs = [job("sms", "+8613800000001", "ok"), job("sms", "+15005550001", "invalid"),
            job("sms", "+15005550004", "stopped"), job("sms", "+8613800000429", "throttled"),
            job("sms", "+8613800000500", "server-error"), job("sms", "+8613800000408", "hangs")]
    started = time.monotonic()
    ok, invalid, stopped, throttled, server_error, hangs = await send(sms, jobs)
    assert time.monotonic() - started < 5  # the hanging request was cut at the 1 s timeout
    assert ok.outcome is Outcome.delivered and ok.awaits_receipt and ok.provider_id.startswith("SM")
    assert (invalid.outcome, "21211" in invalid.reason) == (Outcome.permanent, True)
    assert (stopped.outcome, "21610" in stopped.reason) == (Outcome.permanent, True)
    assert (throttled.outcome, "20429" in throttled.reason) == (Outcome.retryable, True)
    assert server_error.outcome is Outcome.retryable
    assert (hangs.outcome, "Timeout" in hangs.reason) == (Outcome.retryable, True)
    (arrived,) = read_sink(sandbox_container.settings.sink_dir / "sms.jsonl")
    assert (arrived["to"], arrived["delivery_id"]) == ("+8613800000001", jobs[0].delivery_id)
    assert arrived["body"] == jobs[0].text and arrived["encoding"] == "UCS-2" and arrived["segments"] == 1
    assert 590 <= arrived["validity_period"] <= 600  # ends with the alert: never delivered late
    redis, keys = sandbox_container.redis, sandbox_container.keys
    assert orjson.loads(await redis.get(keys.sms_to("+8613800000001")))["recipient"] == "ok"


async def test_push_fcm_and_web_push_outcomes(servers: Processes, sandbox_container: Container) -> None:
    subscribe = httpx.post(f"{sandbox_container.settings.sandbox_url}/webpush/subscriptions").json()
    gone = httpx.post(f"{sandbox_container.settings.sandbox_url}/webpush/subscriptions?gone=1").json()
    push = build_notifier("push", sandbox_container)
    jobs = [job("push", "token-ok", "fcm-ok"), job("push", "unregistered-abc", "fcm-gone"),
            job("push", "unavailable-abc", "fcm-503"), job("push", "invalid-abc", "fcm-400"),
            job("push", "slow-abc", "fcm-slow"), job("push", orjson.dumps(subscribe).decode(), "web-ok", Tier.yellow),
            job("push", orjson.dumps(gone).decode(), "web-gone")]
    ok, unregistered, unavailable, invalid, slow, web_ok, web_gone = await send(push, jobs)
    assert ok.outcome is Outcome.delivered and ok.provider_id.startswith("projects/warning-sandbox/messages/")
    assert (unregistered.outcome, unregistered.unregistered) == (Outcome.permanent, True)
    assert unavailable.outcome is Outcome.retryable and slow.outcome is Outcome.retryable
    assert (invalid.outcome, invalid.unregistered) == (Outcome.permanent, False)
    assert web_ok.outcome is Outcome.delivered
    assert (web_gone.outcome, web_gone.unregistered) == (Outcome.permanent, True)
    arrived = {m["delivery_id"]: m for m in read_sink(sandbox_container.settings.sink_dir / "push.jsonl")}
    assert set(arrived) == {jobs[0].delivery_id, jobs[5].delivery_id}
    fcm, web = arrived[jobs[0].delivery_id], arrived[jobs[5].delivery_id]
    assert (fcm["priority"], fcm["data"]["tier"]) == ("HIGH", "red") and fcm["collapse_key"]
    assert 590 <= int(fcm["ttl"].rstrip("s")) <= 600
    # Web Push: the sandbox decrypted the payload with the subscription's key
    assert (web["via"], web["urgency"], web["data"]["text"]) == ("webpush", "normal", jobs[5].text)
    assert web["topic"] == fcm["collapse_key"]  # one collapse key per alert on both services


async def test_grid_webhook_outcomes_and_signature(servers: Processes, sandbox_container: Container) -> None:
    await sandbox_container.store.alerts.record_alert(_alert())
    grid = build_notifier("grid", sandbox_container)
    jobs = [job("grid", "https://grid.local/440305001001/alerts", "grid:440305001001"),
            job("grid", "https://grid.local/status-500/alerts", "grid:down"),
            job("grid", "https://grid.local/status-400/alerts", "grid:refuses"),
            job("grid", "https://grid.local/slow/alerts", "grid:slow")]
    ok, down, refuses, slow = await send(grid, jobs)
    assert ok.outcome is Outcome.delivered
    assert (down.outcome, refuses.outcome, slow.outcome) == (Outcome.retryable, Outcome.permanent, Outcome.retryable)
    (arrived,) = read_sink(sandbox_container.settings.sink_dir / "grid.jsonl")  # signature checked on arrival
    assert (arrived["delivery_id"], arrived["path"], arrived["tier"], arrived["cap"]) == (
        jobs[0].delivery_id, "grid.local/440305001001/alerts", "red", True)
    forged = httpx.post(f"{sandbox_container.settings.sandbox_url}/grid/grid.local/x", content=b"{}",
                        headers={"X-Warning-Timestamp": str(int(time.time())), "X-Warning-Signature": "v1=00"})
    assert forged.status_code == 401


def _alert() -> Any:
    from datetime import UTC, datetime, timedelta

    from warning.models import AlertVersion

    now = datetime.now(UTC)
    return AlertVersion(alert_id="gas-440305001-20261125T100000Z", key="gas|440305001", hazard="gas",
                        area="440305001", tier=Tier.red, version=1, msg_type="Alert", issued_at=now, caused_at=now,
                        expires=now + timedelta(hours=1), cause="gas_lel 62 %LEL")


def test_twilio_callbacks_need_twilios_signature(servers: Processes, sandboxed: Settings) -> None:
    url = f"{sandboxed.api_url}/v1/providers/twilio/status?d=nope.v1.sms.x"
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "AccountSid": "AC1"}
    good = RequestValidator(SANDBOX_TWILIO_TOKEN).compute_signature(url, params)
    assert httpx.post(url, data=params, headers={"X-Twilio-Signature": good}).status_code == 200
    forged = RequestValidator("not-the-token").compute_signature(url, params)
    response = httpx.post(url, data=params, headers={"X-Twilio-Signature": forged})
    assert response.status_code == 403 and "X-Twilio-Signature" in response.json()["detail"]
    altered = httpx.post(url, data={**params, "MessageStatus": "failed"}, headers={"X-Twilio-Signature": good})
    assert altered.status_code == 403
    assert httpx.post(url, data=params).status_code == 403  # no signature at all
    wait_for(lambda: "twilio_signature_rejected" in (servers.log_dir / "api.log").read_text(), 10,
             "the forged callback logged")


async def test_sms_without_receipt_falls_back_and_undeliverable_resident_becomes_a_door_knock(
        servers: Processes, sandbox_container: Container) -> None:
    """No receipt in time: next channel. Undelivered with nothing left: a door knock."""
    import asyncio

    from consumers.worker import Worker
    from warning.delivery.receipts import KafkaReceiptLog, Receipts

    c = sandbox_container
    await c.store.alerts.record_alert(_alert())
    await c.redis.hset(c.keys.people, mapping={"res-silent": "resident 440305001001",
                                               "res-unreachable": "resident 440305001002"})
    silent = job("sms", "+8613800000000", "res-silent").model_copy(update={"fallback": [("push", "token-ok")]})
    unreachable = job("sms", "+8613800000030", "res-unreachable")
    await c.store.queue.enqueue([silent, unreachable])
    log = KafkaReceiptLog(c.settings.kafka_bootstrap, c.topics.receipts)
    await log.start()
    stop = asyncio.Event()
    sms = build_notifier("sms", c)
    worker = Worker(c.store, sms, receipts=Receipts(c.store, log), receipt_timeout_s=1.0)
    task = asyncio.create_task(worker.run(stop))
    try:
        async def settled() -> tuple[str | None, str | None]:
            return (await c.redis.hget(c.keys.delivery(silent.delivery_id), "status"),
                    await c.redis.hget(c.keys.delivery(unreachable.delivery_id), "status"))

        deadline = time.monotonic() + 20
        while await settled() != ("unconfirmed", "undelivered") and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert await settled() == ("unconfirmed", "undelivered")
    finally:
        stop.set()
        await task
        await log.close()
        await sms.close()
    # The silent number's push fallback is queued (idempotently, once) ...
    await c.store.queue.ensure_group("push")
    (claimed,) = await c.store.queue.read("push", "t", 10, block_ms=100)
    assert (claimed.job.recipient, claimed.job.address, claimed.job.fallback) == ("res-silent", "token-ok", [])
    # ... and the unreachable resident is a task for their grid worker.
    (task_json,) = (await c.redis.hgetall(c.keys.door_knocks(unreachable.alert_id))).values()
    knock = orjson.loads(task_json)
    assert (knock["resident"], knock["grid"], knock["tried"]) == ("res-unreachable", "440305001002", "sms")
    assert "30003" in knock["reason"]
