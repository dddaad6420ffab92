"""SMS over SMPP 3.4 with the real client library (smpp34) against the sandbox SMSC:
routing by 号段 to three gateways, flash SMS for red, UCS-2 and long texts, the refusals
that retry and those that do not, delivery receipts, bad receipts, a refused bind, and a
gateway that drops its bind in the middle of a run."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from consumers.channels import smpp_receipts
from consumers.channels.build import build_notifier
from consumers.channels.smpp_receipts import SmppReceipts
from consumers.channels.smpp_sms import SmppSms
from consumers.notifier import Outcome
from consumers.sinks import read_sink
from consumers.worker import Worker
from tests.conftest import sandbox_running, seeded_container
from warning.bootstrap import Container, bootstrap
from warning.config import Settings
from warning.delivery.receipts import Receipts
from warning.delivery.smpp import ESM_DELIVERY_RECEIPT
from warning.models import DeliveryJob, Tier
from warning.runner import Processes

pytestmark = pytest.mark.integration
RED_TEXT = "【红色预警】南头街道发布燃气泄漏红色预警。回复1确认。编号ABCDEv1"
LONG_TEXT = "【橙色预警】" + "粤海街道发布暴雨橙色预警，停止户外作业，远离低洼地带。" * 4 + "回复1确认。编号ABCDEv1"


@pytest.fixture
def smpp_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"providers": "sandbox", "sms_provider": "smpp", "provider_timeout_s": 1.0})


@pytest.fixture
def smsc(smpp_settings: Settings, tmp_path: Path) -> Iterator[Processes]:
    with sandbox_running(smpp_settings, tmp_path / "logs") as procs:
        yield procs


@pytest.fixture
async def container(smpp_settings: Settings) -> AsyncIterator[Container]:
    async with seeded_container(smpp_settings) as c:
        yield c


def job(address: str, recipient: str, tier: Tier = Tier.red, text: str = RED_TEXT) -> DeliveryJob:
    now = time.time()
    return DeliveryJob(alert_id="gas-440305001-20261202T100000Z", version=1, tier=tier, msg_type="Alert",
                       channel="sms", recipient=recipient, address=address, text=text, expires=now + 600,
                       issued_at=now)


def arrived(settings: Settings) -> list[dict[str, object]]:
    return [m for m in read_sink(settings.sink_dir / "sms.jsonl") if m.get("provider") == "smpp"]


async def test_routing_flash_encoding_and_refusals(smsc: Processes, container: Container) -> None:
    sms = build_notifier("sms", container)
    assert isinstance(sms, SmppSms)
    jobs = [job("+8613800000001", "mobile"), job("+8613000000002", "unicom"),
            job("+8618900000003", "telecom", Tier.yellow), job("+8613800000011", "invalid"),
            job("+8613800000058", "throttled"), job("+8613800000014", "queue-full"),
            job("+8615500000004", "long", Tier.orange, LONG_TEXT), job("+8610000000101", "landline")]
    try:
        results = await sms.send_batch(jobs)
        again = await sms.send_batch([jobs[4], jobs[5]])  # the SMSC takes them the second time
    finally:
        await sms.close()
    outcome = {j.recipient: r for j, r in zip(jobs, results, strict=True)}
    for name in ("mobile", "unicom", "telecom", "long", "landline"):
        assert outcome[name].outcome is Outcome.delivered and outcome[name].awaits_receipt, name
    assert outcome["mobile"].provider_id.startswith("cmcc:") and outcome["unicom"].provider_id.startswith("cucc:")
    assert outcome["telecom"].provider_id.startswith("ctcc:") and outcome["landline"].provider_id.startswith("cmcc:")
    assert (outcome["invalid"].outcome, "ESME_RINVDSTADR" in outcome["invalid"].reason) == (Outcome.permanent, True)
    assert (outcome["throttled"].outcome, "ESME_RTHROTTLED" in outcome["throttled"].reason) == (
        Outcome.retryable, True)
    assert (outcome["queue-full"].outcome, "ESME_RMSGQFUL" in outcome["queue-full"].reason) == (
        Outcome.retryable, True)
    assert [r.outcome for r in again] == [Outcome.delivered, Outcome.delivered]
    got = {m["to"]: m for m in arrived(container.settings)}
    assert set(got) == {"+8613800000001", "+8613000000002", "+8618900000003", "+8615500000004", "+8610000000101",
                        "+8613800000058", "+8613800000014"}
    assert (got["+8613800000001"]["gateway"], got["+8613000000002"]["gateway"],
            got["+8618900000003"]["gateway"]) == ("warning-cmcc", "warning-cucc", "warning-ctcc")
    assert got["+8613800000001"]["body"] == RED_TEXT and got["+8613800000001"]["flash"] is True
    assert got["+8613800000001"]["data_coding"] == 0x18  # UCS-2, message class 0
    assert got["+8618900000003"]["flash"] is False and got["+8618900000003"]["data_coding"] == 0x08
    assert got["+8615500000004"]["long"] is True and got["+8615500000004"]["body"].endswith("编号ABCDEv1")
    message_id = outcome["mobile"].provider_id.split(":")[1]
    assert await container.redis.get(container.keys.smpp_message("cmcc", message_id)) == jobs[0].delivery_id


def refusals(settings: Settings) -> int:
    return sum(1 for b in read_sink(settings.sink_dir / "smpp-binds.jsonl")
               if b.get("system_id") == "warning-ctcc" and b.get("status") == 0x0E)


async def run_until(c: Container, sms: SmppSms, done: object, timeout: float = 30) -> None:
    stop = asyncio.Event()
    worker = Worker(c.store, sms, receipts=sms.receipts.receipts, receipt_timeout_s=60)
    task = asyncio.create_task(worker.run(stop))
    try:
        deadline = time.monotonic() + timeout
        while not await done() and time.monotonic() < deadline:  # type: ignore[operator]
            await asyncio.sleep(0.05)
        assert await done(), "condition not met in time"  # type: ignore[operator]
    finally:
        stop.set()
        await task


async def test_receipts_settle_deliveries_and_undelivered_falls_back(smsc: Processes, container: Container) -> None:
    c = container
    ok, undeliv = job("+8613800000001", "res-ok"), job("+8613800000030", "res-undeliv")
    undeliv = undeliv.model_copy(update={"fallback": [("push", "token-undeliv")]})
    expired = job("+8613000000031", "res-expired")
    await c.store.queue.enqueue([ok, undeliv, expired])
    sms = build_notifier("sms", c, Receipts(c.store, None))
    assert isinstance(sms, SmppSms)

    async def settled() -> bool:
        statuses = await c.store.receipts.statuses([ok, undeliv, expired])
        return statuses == ["delivered", "undelivered", "undelivered"]

    try:
        await run_until(c, sms, settled)
    finally:
        await sms.close()
    receipt = await c.redis.hgetall(c.keys.delivery(undeliv.delivery_id))
    assert receipt["reason"] == "smpp UNDELIV err:001"
    assert "EXPIRED" in (await c.redis.hget(c.keys.delivery(expired.delivery_id), "reason"))
    await c.store.queue.ensure_group("push")
    (claimed,) = await c.store.queue.read("push", "t", 10, block_ms=100)  # the next channel, once
    assert (claimed.job.recipient, claimed.job.address) == ("res-undeliv", "token-undeliv")
    assert sms.receipts.settled == 3


async def test_a_receipt_the_workers_marks_overtake_mid_settle_is_held_not_dropped(
        container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    """The receipt comes while its delivery is still *sending*; the worker's "awaiting receipt"
    and "sent" marks land right after the settle that found nothing awaited. It must be held
    and settle next time (taken for a repeat, it was dropped and the delivery stayed *sent*)."""
    c = container
    ours = job("+8613800000001", "res-overtaken")
    receipts = Receipts(c.store, None)
    await receipts.move([ours], "sending")
    await c.redis.set(c.keys.smpp_message("cmcc", "0000000777"), ours.delivery_id)
    real, calls = smpp_receipts.settle_receipts, []

    async def marks_land_after_the_first_settle(*args: Any) -> list[bool]:
        settled = await real(*args)
        calls.append(settled)
        if len(calls) == 1:  # what the worker does once the batch's handoffs are done
            await c.store.receipts.await_receipt([ours], time.time() + 60)
            await receipts.move([ours], "sent")
        return settled

    monkeypatch.setattr(smpp_receipts, "settle_receipts", marks_land_after_the_first_settle)
    settling = SmppReceipts(receipts, hold_s=10)
    receipt = SimpleNamespace(esm_class=ESM_DELIVERY_RECEIPT, tlvs=[], short_message=(
        b"id:0000000777 sub:001 dlvrd:001 submit date:2612031200 done date:2612031200 stat:DELIVRD err:000 text:"))
    try:
        await settling("cmcc", receipt)
        deadline = time.monotonic() + 10
        while await c.store.receipts.statuses([ours]) != ["delivered"] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await settling.close()
    assert await c.store.receipts.statuses([ours]) == ["delivered"]
    assert calls == [[False], [True]] and (settling.settled, settling.unmatched) == (1, 0)


async def test_bad_receipts_are_logged_and_a_refused_bind_is_retried(smsc: Processes, container: Container,
                                                                     tmp_path: Path) -> None:
    c = container
    sms = build_notifier("sms", c, Receipts(c.store, None))
    assert isinstance(sms, SmppSms)
    sms.receipts.hold_s = 0.5
    base = c.settings.sandbox_url
    try:
        await sms.start()
        await sms.sessions["cmcc"].bound(wait_s=5)
        async with httpx.AsyncClient() as http:
            for text in ("garbage without fields", "id:9999999999 sub:001 dlvrd:001 stat:DELIVRD err:000"):
                r = await http.post(f"{base}/smsc/deliver", json={"system_id": "warning-cmcc", "text": text})
                assert r.json() == {"delivered": 1}
        deadline = time.monotonic() + 10
        while (sms.receipts.malformed, sms.receipts.unmatched) != (1, 1) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert (sms.receipts.malformed, sms.receipts.unmatched, sms.receipts.settled) == (1, 1, 0)
    finally:
        await sms.close()
    # A gateway whose password is wrong: refused by the SMSC, reported, retried; its jobs wait.
    wrong = tmp_path / "wrong-password"
    wrong.write_text("wrongpw")
    gateways = tmp_path / "gateways.yaml"
    gateways.write_text(f"default: ctcc\ngateways:\n  - {{name: ctcc, system_id: warning-ctcc, "
                        f"password_file: {wrong}, connect_timeout_s: 0.5}}\n")
    refused = bootstrap(c.settings.model_copy(update={"smpp_gateways_file": gateways, "providers": "sandbox"}),
                        logging=False)
    sms = build_notifier("sms", refused, Receipts(refused.store, None))
    assert isinstance(sms, SmppSms)
    try:
        (result,) = await sms.send_batch([job("+8618900000003", "telecom")])
        assert result.outcome is Outcome.retryable and "not bound: bind failed" in result.reason
        deadline = time.monotonic() + 10  # the event loop must run: the bind retries in the background
        while refusals(c.settings) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert refusals(c.settings) >= 2, "the refused bind retried"
    finally:
        await sms.close()
        await refused.redis.aclose()
    assert not [m for m in arrived(c.settings) if m["to"] == "+8618900000003"]


async def test_a_gateway_dropping_its_bind_mid_run_loses_nothing_and_sends_nothing_twice(
        smsc: Processes, container: Container, tmp_path: Path) -> None:
    c = container
    gateways = tmp_path / "gateways.yaml"  # slow gateways, so the drop lands mid-run
    gateways.write_text("default: cmcc\ngateways:\n"
                        "  - {name: cmcc, system_id: warning-cmcc, rate_per_s: 150, prefixes: ['+86138']}\n"
                        "  - {name: cucc, system_id: warning-cucc, rate_per_s: 150, prefixes: ['+86130']}\n"
                        "  - {name: ctcc, system_id: warning-ctcc, rate_per_s: 150, prefixes: ['+86189']}\n")
    slow = bootstrap(c.settings.model_copy(update={"smpp_gateways_file": gateways}), logging=False)
    jobs = [job(f"+86{prefix}{n:08d}", f"res-{prefix}-{n}") for prefix in ("138", "130", "189")
            for n in range(100, 400)]
    await slow.store.queue.enqueue(jobs)
    sms = build_notifier("sms", slow, Receipts(slow.store, None))
    assert isinstance(sms, SmppSms)
    dropped: list[int] = []
    seen: list[str] = []

    async def all_delivered() -> bool:
        if not dropped and sum(1 for m in arrived(c.settings) if m["gateway"] == "warning-cmcc") >= 60:
            async with httpx.AsyncClient() as http:
                dropped.append((await http.post(f"{c.settings.sandbox_url}/smsc/drop/warning-cmcc")).json()["dropped"])
        statuses = await slow.store.receipts.statuses(jobs)
        seen[:] = [str(sorted(Counter(statuses).items(), key=str)), str(len(arrived(c.settings)))]
        return statuses.count("delivered") == len(jobs)

    try:
        await run_until(slow, sms, all_delivered, timeout=60)
    except AssertionError:
        raise AssertionError(f"statuses {seen}; dropped {dropped}") from None
    finally:
        await sms.close()
        await slow.redis.aclose()
    assert dropped == [1] and sms.sessions["cmcc"].binds == 2  # dropped once, bound again
    sent = [m["to"] for m in arrived(c.settings)]
    assert len(sent) == len(jobs) and set(sent) == {j.address for j in jobs}  # all of them, each once
