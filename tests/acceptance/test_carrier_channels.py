"""The channels warnings travel on in China, on the real stack: a gas alert in 南头街道 goes
orange then red. Residents on three carriers get it through three SMPP gateways chosen by
number prefix, red as flash SMS; delivery receipts settle it (an UNDELIV one falls back to
push); the area's cells get one broadcast per language, re-channelled on the upgrade and
deleted on the cancel; a gateway that drops its bind loses nothing and sends nothing twice."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from consumers.sinks import read_sink
from tests.acceptance.conftest import cli, logs
from tests.conftest import seed, settings_env, wait_for
from tests.integration.test_api import token
from warning import redis_client
from warning.config import Settings
from warning.keys import Keys
from warning.runner import Processes

pytestmark = pytest.mark.integration
CARRIERS = {"+8613800000001": "warning-cmcc", "+8613000000002": "warning-cucc", "+8618900000003": "warning-ctcc"}
UNDELIVERABLE = "+8613800000030"  # the sandbox SMSC's receipt says stat:UNDELIV


@pytest.fixture
def carrier(settings: Settings) -> Settings:
    return settings.model_copy(update={"providers": "sandbox", "sms_provider": "smpp"})


@pytest.fixture
def live(carrier: Settings, tmp_path: Path) -> Iterator[Processes]:
    seed(carrier)
    people = [{"id": f"res-{n}", "role": "resident", "grid": "440305001001", "phone": phone}
              for n, phone in enumerate(CARRIERS)]
    people.append({"id": "res-undeliv", "role": "resident", "grid": "440305001002", "phone": UNDELIVERABLE,
                   "push_token": "tok-res-undeliv", "channels": ["sms", "push"]})
    (tmp_path / "people.jsonl").write_bytes(b"".join(orjson.dumps(p) + b"\n" for p in people))
    assert cli(carrier, "recipients", "import", str(tmp_path / "people.jsonl")).returncode == 0
    with Processes(tmp_path / "logs", env=settings_env(carrier)) as procs:
        procs.start_pipeline(carrier)
        yield procs


def reading(settings: Settings, tmp_path: Path, value: float) -> datetime:
    now = datetime.now(UTC)
    feed = tmp_path / f"feed-{value}.jsonl"
    feed.write_bytes(orjson.dumps({"station_id": "GAS-NT-001", "kind": "gas_lel", "value": value, "unit": "%LEL",
                                   "observed_at": now.isoformat()}) + b"\n")
    assert cli(settings, "feed", "push", str(feed)).returncode == 0
    return now


def broadcasts(settings: Settings) -> list[tuple[str, int, str]]:
    return [(m["op"], m["message_id"], m["area"]) for m in read_sink(settings.sink_dir / "cell_broadcast.jsonl")]


def status(settings: Settings, alert_id: str) -> dict[str, Any]:
    result = cli(settings, "status", alert_id, "--json")
    return orjson.loads(result.stdout) if result.returncode == 0 else {}


def test_smpp_gateways_and_cell_broadcast_carry_an_alert_from_orange_to_cancel(
        carrier: Settings, live: Processes, tmp_path: Path) -> None:
    def gateways_bound() -> dict[str, float]:  # the sms consumer's heartbeat, as /metrics shows it
        text = httpx.get(f"{carrier.api_url}/metrics", timeout=10).text
        return {m.group(1): float(m.group(2))
                for m in re.finditer(r'warning_smpp_gateway_bound\{gateway="(\w+)"\} (\S+)', text)}

    wait_for(lambda: gateways_bound() == {"cmcc": 1.0, "cucc": 1.0, "ctcc": 1.0}, 30, "every gateway bound",
             gateways_bound)
    first = reading(carrier, tmp_path, 30.0)  # orange
    alert_id = f"gas-440305001-{first.strftime('%Y%m%dT%H%M%SZ')}"
    residents_sms = lambda: [m for m in read_sink(carrier.sink_dir / "sms.jsonl")  # noqa: E731
                             if m["to"] in CARRIERS or m["to"] == UNDELIVERABLE]
    wait_for(lambda: len(residents_sms()) >= 4 and len(broadcasts(carrier)) >= 2, 90, "the orange alert",
             lambda: logs(tmp_path))
    assert sorted(broadcasts(carrier)) == [("create", 4373, "440305001"), ("create", 4386, "440305001")]
    assert not any(m["flash"] for m in residents_sms())  # orange: an ordinary SMS

    reading(carrier, tmp_path, 62.0)  # red: version 2
    wait_for(lambda: sum(1 for m in residents_sms() if m["flash"]) >= 4 and len(broadcasts(carrier)) >= 6, 90,
             "the red upgrade", lambda: logs(tmp_path))
    red = {m["to"]: m for m in residents_sms() if m["flash"]}
    assert {to: red[to]["gateway"] for to in CARRIERS} == CARRIERS  # three gateways, by prefix
    assert all(m["body"].startswith("【红色预警】南头街道发布燃气泄漏红色预警") and m["data_coding"] == 0x18
               for m in red.values())
    assert sorted(broadcasts(carrier)[2:]) == [("create", 4371, "440305001"), ("create", 4384, "440305001"),
                                               ("delete", 4373, "440305001"), ("delete", 4386, "440305001")]

    # Receipts: delivered for the three carriers; UNDELIV goes on to the resident's push.
    def settled() -> bool:
        sms_counts = status(carrier, alert_id).get("channels", {}).get("sms", {})
        pushed = [m for m in read_sink(carrier.sink_dir / "push.jsonl")
                  if m["delivery_id"].endswith(".push.res-undeliv")]
        return sms_counts.get("undelivered", 0) >= 2 and len(pushed) >= 2
    wait_for(settled, 90, "receipts settled and the fallback pushed", lambda: logs(tmp_path))

    r = redis_client.connect_sync(carrier.redis_url, decode_responses=True)
    keys = [Keys(carrier.redis_prefix, carrier.shard_lanes).delivery(f"{alert_id}.v2.sms.res-{n}") for n in range(3)]
    # each carrier's receipt comes on its own: the UNDELIV one above says nothing of the others
    wait_for(lambda: all(r.hget(k, "status") not in (None, "sending", "sent") for k in keys), 60,
             "the three carriers' delivery receipts", lambda: logs(tmp_path))
    for key in keys:
        receipt = r.hgetall(key)
        assert receipt["status"] == "delivered", receipt
        assert float(receipt["sent_at"]) <= float(receipt["delivered_at"])
    undeliv = r.hgetall(Keys(carrier.redis_prefix, carrier.shard_lanes).delivery(f"{alert_id}.v2.sms.res-undeliv"))
    assert (undeliv["status"], undeliv["reason"]) == ("undelivered", "smpp UNDELIV err:001")

    # China Mobile's gateway drops its binds; the cancel still reaches everyone, once.
    assert httpx.post(f"{carrier.sandbox_url}/smsc/drop/warning-cmcc").json()["dropped"] >= 1
    officer = token(carrier, "--role", "officer", "--id", "off-nt", "--area", "440305001", "--level", "township")
    cancel = httpx.post(f"{carrier.api_url}/v1/alerts/{alert_id}/cancel", timeout=30,
                        headers={"Authorization": f"Bearer {officer}", "Idempotency-Key": "cancel-1"},
                        json={"reason": "leak sealed"})
    assert cancel.status_code == 200, cancel.text
    cleared = lambda: [m for m in residents_sms() if m["body"].startswith("【解除】")]  # noqa: E731
    wait_for(lambda: len(cleared()) >= 4 and len(broadcasts(carrier)) >= 8, 90, "the cancel",
             lambda: logs(tmp_path))
    assert sorted(m["to"] for m in cleared()) == sorted([*CARRIERS, UNDELIVERABLE])  # each once
    assert sorted(broadcasts(carrier)[6:]) == [("delete", 4371, "440305001"), ("delete", 4384, "440305001")]
    everything = read_sink(carrier.sink_dir / "sms.jsonl")
    assert max(Counter((m["to"], m["body"]) for m in everything).values()) == 1  # nothing twice, anywhere
    report = orjson.loads(cli(carrier, "report", alert_id).stdout)  # broadcasts apart from per-person reach
    assert [(b["language"], b["message_id"], b["area"], b["repetition_period_s"], bool(b.get("deleted_at")))
            for b in report["broadcasts"]] == [("en", 4384, "440305001", 60, True),
                                               ("zh-CN", 4371, "440305001", 60, True)]
    assert "cell_broadcast" not in report["reach"]  # areas are not people reached
    binds = [b for b in read_sink(carrier.sink_dir / "smpp-binds.jsonl") if b.get("system_id") == "warning-cmcc"]
    assert sum(1 for b in binds if b.get("status") == 0) >= 2  # bound again after the drop
