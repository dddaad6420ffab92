"""Duty officers in control, on the real stack with the shipped release policy: a warning
issued by hand and approved by a second officer, a faulty gas station silenced and its
alert cancelled, a drill beside a live alert, idempotent retries and refusals."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import orjson
import pytest

from consumers.sinks import read_sink
from tests.acceptance.conftest import cli, logs
from tests.conftest import wait_for
from tests.integration.test_api import token
from warning.config import Settings
from warning.runner import Processes

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("settings", [None], indirect=True)]
CHANNELS = ("sms", "push", "grid")
# 南头街道 (440305001) in the demo directory: who is staff and who is a resident, for orange and red.
STAFF_ORANGE = {"gw-nt-01", "gw-nt-02", "off-nt", "off-ns", "grid:440305001001", "grid:440305001002"}
STAFF_RED = STAFF_ORANGE | {"off-sz"}
RESIDENTS = {"res-nt-01", "res-nt-02", "res-nt-03", "res-nt-04"}


@pytest.fixture
def officers(settings: Settings, pipeline: Processes) -> dict[str, str]:
    return {
        "off-nt": token(settings, "--role", "officer", "--id", "off-nt", "--area", "440305001", "--level", "township"),
        "off-ns": token(settings, "--role", "officer", "--id", "off-ns", "--area", "440305", "--level", "district"),
        "off-sz": token(settings, "--role", "officer", "--id", "off-sz", "--area", "440300", "--level", "city"),
        "off-yh": token(settings, "--role", "officer", "--id", "off-yh", "--area", "440305002", "--level", "township"),
        "gw-nt-01": token(settings, "--role", "grid_worker", "--id", "gw-nt-01", "--area", "440305001001"),
        "szmb": token(settings, "--role", "issuer", "--id", "szmb", "--area", "440305"),
    }


def api(settings: Settings, tokens: dict[str, str], who: str, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {tokens[who]}", **kw.pop("headers", {})}
    return httpx.request(method, settings.api_url + path, headers=headers, timeout=30, **kw)


def messages(settings: Settings, alert_id: str) -> list[dict[str, Any]]:
    return [{**m, "channel": ch} for ch in CHANNELS for m in read_sink(settings.sink_dir / f"{ch}.jsonl")
            if m["alert_id"] == alert_id]


def recipients(settings: Settings, alert_id: str, **match: Any) -> Counter[str]:
    """Who got the alert itself (approval requests to officers are counted by ``asked``)."""
    return Counter(m["recipient"] for m in messages(settings, alert_id)
                   if "#approve" not in m["recipient"] and all(m.get(k) == v for k, v in match.items()))


def asked(settings: Settings, alert_id: str) -> dict[str, str]:
    """Approval requests: officer -> the text they got."""
    found = [m for m in messages(settings, alert_id) if "#approve" in m["recipient"]]
    assert len(found) == len({m["recipient"] for m in found})  # each once
    return {m["recipient"].split("#")[0]: m["text"] for m in found}


ORANGE_RAIN = {"hazard": "rainstorm", "tier": "orange", "areas": ["440305001"], "expires_in_s": 7200,
               "texts": {"zh-CN": {"headline": "南头街道暴雨橙色预警", "description": "预计3小时降雨50毫米以上",
                                   "instruction": "停止户外作业，远离低洼地带。"},
                         "en": {"headline": "Orange rainstorm warning for Nantou",
                                "instruction": "Stop outdoor work and keep away from low ground."}}}


def test_issued_by_hand_staff_at_once_residents_after_a_second_officer(
        settings: Settings, officers: dict[str, str], tmp_path: Path) -> None:
    first = api(settings, officers, "off-nt", "POST", "/v1/alerts", json=ORANGE_RAIN,
                headers={"Idempotency-Key": "rain-nt-1", "X-Warning-Via": "console"})
    assert first.status_code == 201, first.text
    body = first.json()
    alert_id = body["alert_id"]
    assert body["status"] == "pending_approval" and body["approval_id"] == f"{alert_id}.v1"
    retry = api(settings, officers, "off-nt", "POST", "/v1/alerts", json=ORANGE_RAIN,
                headers={"Idempotency-Key": "rain-nt-1"})
    assert (retry.status_code, retry.json()) == (201, body)  # the first answer, not a second alert

    wait_for(lambda: set(recipients(settings, alert_id)) == STAFF_ORANGE, 60, "the staff messages",
             lambda: logs(tmp_path))
    assert recipients(settings, alert_id) == Counter(dict.fromkeys(STAFF_ORANGE, 1))  # no resident yet
    sms = next(m for m in messages(settings, alert_id) if m["recipient"] == "gw-nt-01")
    assert sms["text"].startswith("【橙色预警】南头街道暴雨橙色预警，有效至")
    assert "。停止户外作业，远离低洼地带。回复1确认。" in sms["text"]

    pending = api(settings, officers, "off-ns", "GET", "/v1/approvals").json()
    assert [(a["alert_id"], a["segments"], a["author"], a["may_approve"]) for a in pending] == [
        (alert_id, ["residents"], "off-nt", True)]
    assert 0 < pending[0]["hold_left_s"] <= 600
    assert api(settings, officers, "off-yh", "GET", "/v1/approvals").json() == []  # not in her jurisdiction

    wait_for(lambda: set(asked(settings, alert_id)) == {"off-ns", "off-sz"}, 30, "the approval requests")
    assert asked(settings, alert_id)["off-ns"].startswith("【待审核】南头街道暴雨橙色预警待您审核后发布给居民，")

    own = api(settings, officers, "off-nt", "POST", f"/v1/alerts/{alert_id}/approve")
    assert own.status_code == 403 and "two-person rule" in own.json()["detail"]
    assert api(settings, officers, "gw-nt-01", "POST", f"/v1/alerts/{alert_id}/approve").status_code == 403
    outside = api(settings, officers, "off-yh", "POST", f"/v1/alerts/{alert_id}/approve")
    assert outside.status_code == 403 and "jurisdiction" in outside.json()["detail"]

    answers: dict[str, httpx.Response] = {}

    def approve(who: str) -> None:
        answers[who] = api(settings, officers, who, "POST", f"/v1/alerts/{alert_id}/approve")

    both = [threading.Thread(target=approve, args=(who,)) for who in ("off-ns", "off-sz")]
    for t in both:
        t.start()
    for t in both:
        t.join()
    assert sorted(r.status_code for r in answers.values()) == [200, 409]  # released once
    wait_for(lambda: set(recipients(settings, alert_id)) == STAFF_ORANGE | RESIDENTS, 60, "the residents' messages",
             lambda: logs(tmp_path))
    assert recipients(settings, alert_id) == Counter(dict.fromkeys(STAFF_ORANGE | RESIDENTS, 1))
    en = next(m for m in messages(settings, alert_id) if m["recipient"] == "res-nt-03")
    assert en["text"].startswith("[ORANGE warning] Orange rainstorm warning for Nantou, valid until ")
    assert ". Stop outdoor work and keep away from low ground. Reply 1 to confirm." in en["text"]

    cap = api(settings, officers, "off-ns", "GET", f"/v1/alerts/{alert_id}/cap")
    ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    infos = ET.fromstring(cap.content).findall("cap:info", ns)
    assert [(i.findtext("cap:language", namespaces=ns), i.findtext("cap:headline", namespaces=ns),
             i.findtext("cap:instruction", namespaces=ns)) for i in infos] == [
        ("zh-CN", "南头街道暴雨橙色预警", "停止户外作业，远离低洼地带。"),
        ("en", "Orange rainstorm warning for Nantou", "Stop outdoor work and keep away from low ground.")]

    trail = api(settings, officers, "off-ns", "GET", f"/v1/alerts/{alert_id}").json()["audit"]
    steps = [(e["event"], e["by"]) for e in trail if e["event"].startswith(("issue", "approve"))]
    assert steps[:3] == [("issue", "off-nt"), ("approve_refused", "off-nt"), ("approve_refused", "off-yh")]
    assert sorted(steps[3:]) == sorted([("approve", next(w for w, r in answers.items() if r.status_code == 200)),
                                        ("approve_refused", next(w for w, r in answers.items()
                                                                 if r.status_code == 409))])
    assert next(e for e in trail if e["event"] == "issue")["via"] == "console"
    assert api(settings, officers, "off-ns", "GET", "/v1/approvals").json() == []


def test_a_faulty_gas_station_is_silenced_and_its_alert_cancelled(
        settings: Settings, officers: dict[str, str], tmp_path: Path) -> None:
    now = datetime.now(UTC)

    def reading(value: float, seconds: float) -> None:
        feed = tmp_path / f"gas-{seconds}.jsonl"
        feed.write_bytes(orjson.dumps({"station_id": "GAS-NT-001", "kind": "gas_lel", "value": value,
                                       "unit": "%LEL", "observed_at": (now + timedelta(seconds=seconds)).isoformat()}))
        assert cli(settings, "feed", "push", str(feed)).returncode == 0

    reading(60.0, 0)
    alert_id = wait_for(lambda: next(iter({m["alert_id"] for m in read_sink(settings.sink_dir / "grid.jsonl")}),
                                     None), 60, "the red gas alert", lambda: logs(tmp_path))
    wait_for(lambda: set(recipients(settings, alert_id)) == STAFF_RED, 60, "the staff messages")
    assert api(settings, officers, "off-ns", "GET", "/v1/approvals").json()[0]["author"] == "rule"
    wait_for(lambda: set(asked(settings, alert_id)) == {"off-nt", "off-ns", "off-sz"}, 30, "the approval requests")

    ends = (now + timedelta(hours=2)).isoformat()
    silence = api(settings, officers, "off-nt", "POST", "/v1/silences",
                  json={"matchers": {"station": "GAS-NT-001"}, "ends_at": ends, "comment": "sensor fails high"})
    assert silence.status_code == 201, silence.text
    sid = silence.json()["silence_id"]
    assert silence.json()["status"] == "pending_approval" and silence.json()["covers_red_alerts"] == [alert_id]
    own = api(settings, officers, "off-nt", "POST", f"/v1/silences/{sid}/approve")
    assert own.status_code == 403 and "two-person rule" in own.json()["detail"]
    assert api(settings, officers, "off-ns", "POST", f"/v1/silences/{sid}/approve").json()["status"] == "active"

    cancel = api(settings, officers, "off-nt", "POST", f"/v1/alerts/{alert_id}/cancel",
                 json={"reason": "sensor fault confirmed on site", "allow_reissue": "any"},
                 headers={"Idempotency-Key": "cancel-1"})
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled", cancel.text
    late = api(settings, officers, "off-ns", "POST", f"/v1/alerts/{alert_id}/approve")
    assert late.status_code == 409 and "not active" in late.json()["detail"]
    again = api(settings, officers, "off-nt", "POST", f"/v1/alerts/{alert_id}/cancel",
                json={"reason": "sensor fault confirmed on site", "allow_reissue": "any"},
                headers={"Idempotency-Key": "cancel-1"})
    assert again.json() == cancel.json()
    wait_for(lambda: set(recipients(settings, alert_id, msg_type="Cancel")) == STAFF_RED, 60, "the all-clear")
    assert recipients(settings, alert_id, msg_type="Cancel") == Counter(dict.fromkeys(STAFF_RED, 1))
    assert recipients(settings, alert_id, msg_type="Alert") == Counter(dict.fromkeys(STAFF_RED, 1))
    assert not RESIDENTS & set(recipients(settings, alert_id))  # never told: neither the alert nor its all-clear
    clear = next(m for m in messages(settings, alert_id) if m["recipient"] == "gw-nt-01" and m["msg_type"] == "Cancel")
    assert clear["text"].startswith("【解除】南头街道燃气泄漏预警已解除")

    reading(5.0, 30)  # back to normal, then high again: both signals reach the lifecycle, silenced
    reading(65.0, 60)
    worker_log = tmp_path / "logs" / "worker.log"
    wait_for(lambda: worker_log.read_text().count('"signal_silenced"') >= 2, 60, "the silenced signals",
             lambda: logs(tmp_path))
    assert orjson.loads(cli(settings, "alerts", "--json").stdout) == []
    assert {m["alert_id"] for m in read_sink(settings.sink_dir / "grid.jsonl")} == {alert_id}

    trail = api(settings, officers, "off-ns", "GET", f"/v1/alerts/{alert_id}").json()["audit"]
    cancelled = [e for e in trail if e["event"] == "cancel"]
    assert [(e["by"], e["reason"], e["via"]) for e in cancelled] == [("off-nt", "sensor fault confirmed on site",
                                                                       "api")]
    listed = orjson.loads(cli(settings, "silence", "list").stdout)
    assert [(s["silence_id"], s["status"], s["author"], s["approved_by"]) for s in listed] == [
        (sid, "active", "off-nt", "off-ns")]

    closed = api(settings, officers, "off-ns", "GET", "/v1/alerts", params={"state": "closed"})
    assert [(a["alert_id"], a["state"]) for a in closed.json()] == [(alert_id, "cancelled")]
    assert closed.headers["X-Total-Count"] == "1"
    size = asyncio.run(archive_now(settings, alert_id))  # what an escalator does ten minutes later
    print(f"archived alert {alert_id}: {size} bytes in Redis")
    assert 0 < size < 64 * 1024
    by_cli = orjson.loads(cli(settings, "alerts", "--closed", "--json").stdout)
    assert [(a["alert_id"], a["state"], a["hazard"]) for a in by_cli] == [(alert_id, "cancelled", "gas")]
    report = api(settings, officers, "off-ns", "GET", f"/v1/alerts/{alert_id}/report").json()
    assert report["alert_id"] == alert_id

async def archive_now(settings: Settings, alert_id: str) -> int:
    from warning.bootstrap import bootstrap
    from warning.response.history import ARCHIVE_AFTER_S, archive_due, archived

    c = bootstrap(settings, logging=False)
    try:
        assert await archive_due(c, time.time() + ARCHIVE_AFTER_S + 1) == 1
        kept = await archived(c, alert_id)
        assert [e["event"] for e in kept["detail"]["audit"] if e["event"] == "cancel"] == ["cancel"]
        return int(await c.redis.memory_usage(c.keys.archived(alert_id)) or 0)
    finally:
        await c.redis.aclose()


def test_a_drill_reaches_only_the_drill_audience_and_leaves_a_live_alert_alone(
        settings: Settings, officers: dict[str, str], tmp_path: Path) -> None:
    drill = api(settings, officers, "off-nt", "POST", "/v1/alerts", json={**ORANGE_RAIN, "drill": True})
    assert drill.status_code == 201, drill.text
    drill_id = drill.json()["alert_id"]
    assert drill_id.startswith("drill-rainstorm-440305001-")
    live = api(settings, officers, "off-ns", "POST", "/v1/alerts", json={**ORANGE_RAIN, "tier": "red"})
    live_id = live.json()["alert_id"]
    drill_staff = {"gw-nt-01", "gw-nt-02", "off-nt", "off-ns"}  # officers and grid workers: no endpoints
    wait_for(lambda: set(recipients(settings, drill_id)) == drill_staff, 60, "the drill's messages",
             lambda: logs(tmp_path))
    wait_for(lambda: set(recipients(settings, live_id)) == STAFF_RED, 60, "the live alert's staff messages")
    nothing_held = api(settings, officers, "off-sz", "POST", f"/v1/alerts/{drill_id}/approve")
    assert nothing_held.status_code == 409  # a drill that names no residents holds nothing for them
    assert api(settings, officers, "off-nt", "POST", f"/v1/alerts/{live_id}/approve").status_code == 200
    wait_for(lambda: set(recipients(settings, live_id)) == STAFF_RED | RESIDENTS, 60, "the live alert's residents")
    assert recipients(settings, drill_id) == Counter(dict.fromkeys(drill_staff, 1))
    for m in messages(settings, drill_id):
        assert m["text"].startswith("【演练】" if m["language"] == "zh-CN" else "[EXERCISE]")
    for m in messages(settings, live_id):
        assert "演练" not in m["text"] and "EXERCISE" not in m["text"] and (m["version"], m["tier"]) == (1, "red")

    cap = api(settings, officers, "off-ns", "GET", f"/v1/alerts/{drill_id}/cap").text
    assert "<status>Exercise</status>" in cap
    metrics = httpx.get(f"{settings.api_url}/metrics", timeout=10).text
    for drill_label, alert_id in (("true", drill_id), ("false", live_id)):  # counted apart
        sms = sum(1 for m in messages(settings, alert_id) if m["channel"] == "sms")
        assert f'warning_deliveries_total{{channel="sms",drill="{drill_label}",status="sent"}} {float(sms)}' in metrics
    listed = api(settings, officers, "off-ns", "GET", "/v1/alerts").json()
    assert {(a["alert_id"], a["drill"]) for a in listed} == {(drill_id, True), (live_id, False)}


def test_the_cli_issues_approves_and_cancels_as_an_officer_of_the_directory(
        settings: Settings, officers: dict[str, str], tmp_path: Path) -> None:
    issued = cli(settings, "alert", "issue", "--hazard", "gale", "--tier", "yellow", "--area", "440305001",
                 "--by", "off-nt", "--idempotency-key", "k1", "--json")
    assert issued.returncode == 0, issued.stderr
    first = orjson.loads(issued.stdout)
    assert first["status"] == "pending_approval" and first["alert_id"].startswith("manual-gale-440305001-")
    retry = cli(settings, "alert", "issue", "--hazard", "gale", "--tier", "yellow", "--area", "440305001",
                "--by", "off-nt", "--idempotency-key", "k1", "--json")
    assert orjson.loads(retry.stdout) == first
    alert_id = first["alert_id"]
    own = cli(settings, "alert", "approve", alert_id, "--by", "off-nt")
    assert own.returncode == 1 and orjson.loads(own.stdout)["status"] == 403
    ok = cli(settings, "alert", "approve", alert_id, "--by", "off-ns", "--json")
    assert ok.returncode == 0 and orjson.loads(ok.stdout)["status"] == "released"
    wait_for(lambda: {"res-nt-01"} <= set(recipients(settings, alert_id)), 60, "the opted-in resident")
    assert set(recipients(settings, alert_id)) & RESIDENTS == {"res-nt-01"}  # yellow: opted-in residents only
    cancelled = cli(settings, "alert", "cancel", alert_id, "--by", "off-nt", "--reason", "wind dropped", "--json")
    assert orjson.loads(cancelled.stdout)["status"] == "cancelled"
    assert cli(settings, "alert", "approve", "no-such", "--by", "off-ns").returncode == 1
    assert cli(settings, "alert", "approve", alert_id, "--by", "nobody").returncode == 2
    trail = api(settings, officers, "off-ns", "GET", f"/v1/alerts/{alert_id}").json()["audit"]
    assert [(e["event"], e["by"], e["via"]) for e in trail if "approve" in e["event"] or e["event"] == "cancel"] == [
        ("approve_refused", "off-nt", "cli"), ("approve", "off-ns", "cli"), ("cancel", "off-nt", "cli")]


def test_bad_requests_name_the_field(settings: Settings, officers: dict[str, str]) -> None:
    def issue(**change: Any) -> httpx.Response:
        return api(settings, officers, "off-nt", "POST", "/v1/alerts", json={**ORANGE_RAIN, **change})

    def field(response: httpx.Response) -> str:
        detail = response.json()["detail"]
        if isinstance(detail, dict):
            return str(detail["errors"][0]["field"])
        return ".".join(str(p) for p in detail[0]["loc"][1:])

    unknown_area = issue(areas=["440305009"])
    assert (unknown_area.status_code, field(unknown_area)) == (422, "areas[0]")
    unknown_hazard = issue(hazard="meteor")
    assert (unknown_hazard.status_code, field(unknown_hazard)) == (422, "hazard")
    open_ring = issue(polygon=[[113.90, 22.53], [113.93, 22.53], [113.93, 22.55], [113.90, 22.55]])
    assert open_ring.status_code == 422 and "not closed" in open_ring.text
    past = issue(expires_in_s=-60)
    assert (past.status_code, field(past)) == (422, "expires_in_s")
    assert issue(tier="purple").status_code == 422
    outside = issue(areas=["440305002"])
    assert outside.status_code == 403 and "jurisdiction" in outside.json()["detail"]
    assert api(settings, officers, "gw-nt-01", "POST", "/v1/alerts", json=ORANGE_RAIN).status_code == 403
    heat_blue = issue(hazard="heat", tier="blue")
    assert (heat_blue.status_code, field(heat_blue)) == (422, "tier")  # CMA's heat signal has no blue
    by_issuer = api(settings, officers, "szmb", "POST", "/v1/alerts", json=ORANGE_RAIN)
    assert by_issuer.status_code == 201 and by_issuer.json()["status"] == "pending_approval"
    issuer_approves = api(settings, officers, "szmb", "POST", f"/v1/alerts/{by_issuer.json()['alert_id']}/approve")
    assert issuer_approves.status_code == 403 and "officer" in issuer_approves.json()["detail"]
    assert api(settings, officers, "off-nt", "POST", "/v1/alerts/nope/cancel",
               json={"reason": "x"}).status_code == 404
