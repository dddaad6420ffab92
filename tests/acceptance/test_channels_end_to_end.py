"""The real adapters in the running pipeline, against the provider sandbox: fallback from a
dead push token to SMS with its receipt chain, and an SMS reply that acknowledges."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from consumers.sinks import read_sink
from tests.acceptance.conftest import cli, consume_all, logs, read_topic
from tests.conftest import seed, settings_env, wait_for
from warning import redis_client
from warning.config import Settings
from warning.keys import Keys
from warning.runner import Processes

pytestmark = pytest.mark.integration


@pytest.fixture
def sandboxed(settings: Settings) -> Settings:
    return settings.model_copy(update={"providers": "sandbox"})


@pytest.fixture
def live_pipeline(sandboxed: Settings, tmp_path: Path) -> Iterator[Processes]:
    seed(sandboxed)
    # res-nt-01 prefers push, then SMS; their app was uninstalled (FCM: UNREGISTERED).
    people = tmp_path / "people.jsonl"
    people.write_bytes(orjson.dumps({"id": "res-nt-01", "role": "resident", "grid": "440305001001",
                                     "phone": "+8610000000301", "push_token": "unregistered-res-nt-01",
                                     "channels": ["push", "sms"], "opted_in": True}) + b"\n")
    assert cli(sandboxed, "recipients", "import", str(people)).returncode == 0
    with Processes(tmp_path / "logs", env=settings_env(sandboxed)) as procs:
        procs.start_pipeline(sandboxed)
        yield procs


def red_gas(settings: Settings, tmp_path: Path) -> str:
    now = datetime.now(UTC)
    feed = tmp_path / "feed.jsonl"
    feed.write_bytes(orjson.dumps({"station_id": "GAS-NT-001", "kind": "gas_lel", "value": 62.0, "unit": "%LEL",
                                   "observed_at": now.isoformat()}) + b"\n")
    assert cli(settings, "feed", "push", str(feed)).returncode == 0
    return f"gas-440305001-{now.strftime('%Y%m%dT%H%M%SZ')}"


def status(settings: Settings, alert_id: str) -> dict[str, Any]:
    result = cli(settings, "status", alert_id, "--json")
    return orjson.loads(result.stdout) if result.returncode == 0 else {}


def test_push_fails_permanently_and_sms_fallback_delivers(sandboxed: Settings, live_pipeline: Processes,
                                                          tmp_path: Path) -> None:
    alert_id = red_gas(sandboxed, tmp_path)
    push_id, sms_id = f"{alert_id}.v1.push.res-nt-01", f"{alert_id}.v1.sms.res-nt-01"
    sms_sink = sandboxed.sink_dir / "sms.jsonl"

    def fallback_delivered() -> bool:
        return status(sandboxed, alert_id).get("channels", {}).get("sms", {}).get("delivered", 0) >= 6

    wait_for(fallback_delivered, 90, "SMS fallback delivered", lambda: logs(tmp_path))
    (fallback_sms,) = [m for m in read_sink(sms_sink) if m["delivery_id"] == sms_id]
    assert fallback_sms["to"] == "+8610000000301" and "红色预警" in fallback_sms["body"]
    assert not [m for m in read_sink(sandboxed.sink_dir / "push.jsonl") if m["delivery_id"] == push_id]

    # The receipt chain, stored per delivery ...

    r = redis_client.connect_sync(sandboxed.redis_url, decode_responses=True)
    push_receipt = r.hgetall(Keys(sandboxed.redis_prefix, sandboxed.shard_lanes).delivery(f"{push_id}"))
    sms_receipt = r.hgetall(Keys(sandboxed.redis_prefix, sandboxed.shard_lanes).delivery(f"{sms_id}"))
    assert push_receipt["status"] == "failed" and "UNREGISTERED" in push_receipt["reason"]
    assert {"sending_at", "failed_at"} <= set(push_receipt)
    assert sms_receipt["status"] == "delivered" and sms_receipt["provider_sid"].startswith("SM")
    assert float(sms_receipt["sending_at"]) <= float(sms_receipt["sent_at"]) <= float(sms_receipt["delivered_at"])
    # ... the dead token is gone from the directory (SMS is now their first channel) ...
    stub = r.hget(f"{sandboxed.redis_prefix}:dir:{{440305001001}}:residents", "res-nt-01")
    assert stub is not None and stub.startswith("sms\tres-nt-01\t") and "unregistered" not in stub
    # ... and every change is on warning.receipts, in order, per delivery.
    records = wait_for(lambda: (got := read_topic(sandboxed, "warning.receipts")) and
                       _chain(got, sms_id)[-1:] == ["delivered"] and got, 30, "the receipt chain on warning.receipts")
    assert _chain(records, push_id) == ["sending", "failed"]
    assert _chain(records, sms_id) == ["sending", "sent", "delivered"]
    delivered = next(r for r in records if sms_id in r["deliveries"] and r["status"] == "delivered")
    assert delivered["sid"].startswith("SM") and delivered["provider_status"] == "delivered"
    assert status(sandboxed, alert_id)["channels"]["push"].get("failed") == 1
    assert live_pipeline.dead() == []


def _chain(records: list[dict[str, Any]], delivery_id: str) -> list[str]:
    return [r["status"] for r in records if delivery_id in r["deliveries"]]


def test_sms_reply_acknowledges_the_alert_it_answers(sandboxed: Settings, live_pipeline: Processes,
                                                     tmp_path: Path) -> None:
    alert_id = red_gas(sandboxed, tmp_path)
    officer_sms = f"{alert_id}.v1.sms.off-nt"
    wait_for(lambda: any(m["delivery_id"] == officer_sms for m in read_sink(sandboxed.sink_dir / "sms.jsonl")),
             90, "the officer's SMS", lambda: logs(tmp_path))
    inbound = f"{sandboxed.api_url}/v1/providers/twilio/inbound"

    def reply(sender: str, body: str) -> dict[str, Any]:
        # The sandbox posts Twilio's signed inbound-message webhook to our API.
        result: dict[str, Any] = httpx.post(f"{sandboxed.sandbox_url}/sandbox/sms/inbound", timeout=10,
                                            json={"from": sender, "body": body, "url": inbound}).json()
        return result

    assert "已确认" not in reply("+8610000000302", "收到")["body"]  # a resident's reply is no acknowledgement
    answer = reply("+8610000000201", "收到")  # off-nt, the township duty officer
    assert answer["status"] == 200 and "已确认" in answer["body"]
    assert [a["by"] for a in status(sandboxed, alert_id)["acks"]] == ["off-nt"]
    (event,) = consume_all(sandboxed, "warning.acks", 1)
    assert (event["alert_id"], event["by"], event["via"]) == (alert_id, "off-nt", "sms")
    forged = httpx.post(inbound, data={"From": "+8610000000201", "Body": "1", "MessageSid": "SMx"},
                        headers={"X-Twilio-Signature": "forged"})
    assert forged.status_code == 403


@pytest.mark.parametrize("settings", [None], indirect=True)  # the shipped policy: one station's residents wait
def test_an_officer_approves_by_sms_reply(sandboxed: Settings, live_pipeline: Processes, tmp_path: Path) -> None:
    import re

    alert_id = red_gas(sandboxed, tmp_path)
    sms_sink = sandboxed.sink_dir / "sms.jsonl"
    request_id = f"{alert_id}.v1.sms.off-ns#approve0"  # the district officer is asked to approve
    asked = wait_for(lambda: next((m for m in read_sink(sms_sink) if m["delivery_id"] == request_id), None), 90,
                     "the approval request by SMS", lambda: logs(tmp_path))
    body = str(asked["body"])
    assert body.startswith("【待审核】南头街道燃气泄漏红色预警待您审核后发布给居民")
    ref = re.search(r"回复“批准 ([A-Z2-7]{5}v\d+)”即批准", body)
    assert ref, body
    resident = f"{alert_id}.v1.sms.res-nt-02"
    assert not any(m["delivery_id"] == resident for m in read_sink(sms_sink))  # held

    inbound = f"{sandboxed.api_url}/v1/providers/twilio/inbound"
    answer = httpx.post(f"{sandboxed.sandbox_url}/sandbox/sms/inbound", timeout=30,
                        json={"from": "+8610000000203", "body": f"批准 {ref.group(1)}", "url": inbound}).json()
    assert answer["status"] == 200 and "已批准" in answer["body"], answer
    wait_for(lambda: any(m["delivery_id"] == resident for m in read_sink(sms_sink)), 60, "the resident's SMS")
    again = httpx.post(f"{sandboxed.sandbox_url}/sandbox/sms/inbound", timeout=30,
                       json={"from": "+8610000000203", "body": f"APPROVE {ref.group(1)}", "url": inbound}).json()
    assert "未批准" in again["body"] and "already released" in again["body"]

    r = redis_client.connect_sync(sandboxed.redis_url, decode_responses=True)
    trail = [orjson.loads(e) for e in r.lrange(f"{sandboxed.redis_prefix}:audit:{{{alert_id}}}", 0, -1)]
    assert [(e["event"], e["by"], e["via"]) for e in trail if "approve" in e["event"]] == [
        ("approve", "off-ns", "sms"), ("approve_refused", "off-ns", "sms")]
