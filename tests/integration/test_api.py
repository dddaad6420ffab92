"""The HTTP API as a client sees it (httpx against a running `warning api`): auth and
jurisdiction, validation, idempotent acks, feedback, reads, operations."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.acceptance.conftest import consume_all, read_topic
from tests.conftest import seed, settings_env
from tests.data import CAP_CORPUS
from warning.bootstrap import bootstrap
from warning.config import Settings
from warning.feeds import ensure_topics
from warning.models import AlertVersion, Tier
from warning.runner import Processes, wait_http

pytestmark = pytest.mark.integration
CORPUS = CAP_CORPUS
ALERT_ID = "gas-440305001-20261125T100000Z"


def token(settings: Settings, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "warning", "tokens", "create", *args], capture_output=True,
                         text=True, env={**__import__("os").environ, **settings_env(settings)}, timeout=60)
    assert out.returncode == 0, out.stderr
    value: str = orjson.loads(out.stdout)["token"]
    return value


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[dict[str, Any]]:
    seed(settings)
    ensure_topics(settings)

    async def record() -> None:
        c = bootstrap(settings, logging=False)
        now = datetime.now(UTC)
        alert = AlertVersion(alert_id=ALERT_ID, key="gas|440305001", hazard="gas", area="440305001", tier=Tier.red,
                             version=1, msg_type="Alert", issued_at=now, caused_at=now,
                             expires=now + timedelta(hours=2), cause="GAS-NT-001 62 %LEL")
        await c.store.alerts.record_alert(alert)
        await c.redis.sadd(c.keys.alert_grids(ALERT_ID), "440305001001", "440305001002")
        await c.escalation.on_version(alert)
        await c.redis.aclose()

    asyncio.run(record())
    tokens = {
        "publisher": token(settings, "--role", "publisher", "--id", "cma-feed"),
        "township": token(settings, "--role", "officer", "--id", "off-nt", "--area", "440305001", "--level",
                          "township"),
        "other_township": token(settings, "--role", "officer", "--id", "off-yh", "--area", "440305002",
                                "--level", "township"),
        "worker": token(settings, "--role", "grid_worker", "--id", "gw-nt-01", "--area", "440305001001"),
        "other_worker": token(settings, "--role", "grid_worker", "--id", "gw-yh-01", "--area", "440305002001"),
    }
    with Processes(tmp_path / "logs", env=settings_env(settings)) as procs:
        procs.start("api", "api")
        wait_http(f"{settings.api_url}/healthz", procs)
        yield {"url": settings.api_url, "tokens": tokens, "procs": procs, "logs": tmp_path / "logs" / "api.log"}


def call(api: dict[str, Any], method: str, path: str, who: str | None = None, **kw: Any) -> httpx.Response:
    headers = {**kw.pop("headers", {}), **({"Authorization": f"Bearer {api['tokens'][who]}"} if who else {})}
    return httpx.request(method, api["url"] + path, headers=headers, timeout=15, **kw)


def test_auth_roles_and_jurisdiction(api: dict[str, Any]) -> None:
    assert call(api, "GET", "/v1/alerts").status_code == 401
    bad = call(api, "GET", "/v1/alerts", headers={"Authorization": "Bearer wt_forged"})
    assert bad.status_code == 401 and "token" in bad.json()["detail"]
    assert call(api, "POST", f"/v1/alerts/{ALERT_ID}/ack", "publisher").status_code == 403
    assert call(api, "POST", "/v1/feeds/observations", "township", json=[]).status_code == 403
    outside = call(api, "POST", f"/v1/alerts/{ALERT_ID}/ack", "other_township")
    assert outside.status_code == 403 and "jurisdiction" in outside.json()["detail"]
    assert call(api, "POST", f"/v1/alerts/{ALERT_ID}/ack", "other_worker").status_code == 403
    assert call(api, "POST", "/v1/alerts/no-such/ack", "township").status_code == 404
    log = api["logs"].read_text()
    assert '"caller": "off-yh"' in log or '"caller":"off-yh"' in log
    assert not any(t in log for t in api["tokens"].values())  # identities logged, never tokens


def test_feed_validation_and_acceptance(api: dict[str, Any], settings: Settings) -> None:
    now = datetime.now(UTC).isoformat()
    good = {"station_id": "RAIN-NT-002", "kind": "rainfall", "value": 3.5, "unit": "mm", "observed_at": now}
    bad = call(api, "POST", "/v1/feeds/observations", "publisher", json=[good, {**good, "value": "high"},
                                                                           {**good, "observed_at": None}])
    assert bad.status_code == 422
    errors = bad.json()["detail"]["errors"]
    assert [(e["at"], e["field"]) for e in errors] == [("item 1", "value"), ("item 2", "observed_at")]
    jsonl = orjson.dumps(good) + b"\n{not json\n"
    lines = call(api, "POST", "/v1/feeds/observations", "publisher", content=jsonl,
                 headers={"Content-Type": "application/x-ndjson"})
    assert lines.status_code == 422 and lines.json()["detail"]["errors"][0]["at"] == "line 2"
    assert call(api, "POST", "/v1/feeds/observations", "publisher", content=b"{oops").status_code == 400
    huge = b"[" + b",".join([orjson.dumps(good)] * 60_000) + b"]"
    assert call(api, "POST", "/v1/feeds/observations", "publisher", content=huge).status_code == 413
    assert read_topic(settings, "feeds.observations") == []  # nothing from a refused request got in

    accepted = call(api, "POST", "/v1/feeds/observations", "publisher", json=[good, {**good, "value": 4.0}])
    assert accepted.status_code == 202 and accepted.json()["accepted"] == 2
    (batch,) = consume_all(settings, "feeds.observations", 1)
    assert [r["value"] for r in batch] == [3.5, 4.0]

    invalid_cap = call(api, "POST", "/v1/feeds/cap", "publisher", content=b"<alert>not cap</alert>")
    assert invalid_cap.status_code == 422 and invalid_cap.json()["detail"]["errors"]
    cap = (CORPUS / "oasis-spec-examples" / sorted(p.name for p in (CORPUS / "oasis-spec-examples").iterdir()
                                                    if p.suffix in (".xml", ".cap"))[0]).read_bytes()
    posted = call(api, "POST", "/v1/feeds/cap", "publisher", content=cap)
    assert posted.status_code == 202, posted.text
    (raw,) = [m for m in read_topic_raw(settings, "feeds.cap")]
    assert raw == cap


def read_topic_raw(settings: Settings, topic: str) -> list[bytes]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(settings.topic_prefix + topic, bootstrap_servers=settings.kafka_bootstrap,
                             auto_offset_reset="earliest", group_id=None)
    got: list[bytes] = []
    try:
        while batches := consumer.poll(timeout_ms=1000):
            got += [m.value for batch in batches.values() for m in batch]
    finally:
        consumer.close()
    return got


def test_ack_is_idempotent_stops_escalation_and_is_audited(api: dict[str, Any], settings: Settings) -> None:
    before = call(api, "GET", f"/v1/alerts/{ALERT_ID}", "township").json()
    assert before["escalation"]["state"] == "running" and before["escalation"]["next_level"] == "district"
    first = call(api, "POST", f"/v1/alerts/{ALERT_ID}/ack", "township")
    again = call(api, "POST", f"/v1/alerts/{ALERT_ID}/ack", "township")
    assert first.status_code == again.status_code == 200
    assert (first.json()["recorded"], again.json()["recorded"]) == (True, False)
    assert first.json()["escalation"]["state"] == "acknowledged"
    worker = call(api, "POST", f"/v1/alerts/{ALERT_ID}/ack", "worker")
    assert worker.json()["recorded"] is True
    detail = call(api, "GET", f"/v1/alerts/{ALERT_ID}", "township").json()
    assert [a["by"] for a in detail["acks"]] == ["off-nt", "gw-nt-01"]
    assert [e["event"] for e in detail["audit"]] == ["ack", "ack"]
    grids = detail["grids"]
    assert [g["grid"] for g in grids["confirmed"]] == ["440305001001"]  # gw-nt-01 is its only worker
    assert [g["grid"] for g in grids["unconfirmed"]] == ["440305001002"]
    events = consume_all(settings, "warning.acks", 2)
    assert sorted((e["by"], e["via"], e["version"]) for e in events) == [("gw-nt-01", "api", 1), ("off-nt", "api", 1)]


def test_feedback_reads_cap_report_and_operations(api: dict[str, Any], settings: Settings) -> None:
    bad = call(api, "POST", f"/v1/alerts/{ALERT_ID}/feedback", "worker", json={"status": "fine", "text": "x"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "status"
    photo = call(api, "POST", f"/v1/alerts/{ALERT_ID}/feedback", "worker",
                 json={"status": "需支援", "text": "燃气味浓，需消防支援", "photo_url": "javascript:alert(1)"})
    assert photo.status_code == 422
    ok = call(api, "POST", f"/v1/alerts/{ALERT_ID}/feedback", "worker",
              json={"status": "需支援", "text": "燃气味浓，需消防支援", "photo_url": "https://img.example/1.jpg"})
    assert ok.status_code == 201 and ok.json()["by"] == "gw-nt-01"
    (event,) = consume_all(settings, "warning.acks", 1)
    assert (event["event"], event["status"], event["text"]) == ("feedback", "需支援", "燃气味浓，需消防支援")

    listed = call(api, "GET", "/v1/alerts?tier=red&area=440305", "township").json()
    assert [(a["alert_id"], a["status"], a["feedback"][0]["status"]) for a in listed] == [
        (ALERT_ID, "unacknowledged", "需支援")]
    assert call(api, "GET", "/v1/alerts?tier=blue", "township").json() == []
    assert call(api, "GET", "/v1/alerts?tier=purple", "township").status_code == 422
    cap = call(api, "GET", f"/v1/alerts/{ALERT_ID}/cap", "township")
    assert cap.headers["content-type"].startswith("application/cap+xml") and b"<identifier>" in cap.content
    from warning.cap.validate import validate_cap

    assert validate_cap(cap.content).valid
    report = call(api, "GET", f"/v1/alerts/{ALERT_ID}/report", "township").json()
    assert report["feedback"][0]["text"] == "燃气味浓，需消防支援" and report["escalation"]["final_state"] == "running"
    assert call(api, "GET", "/v1/alerts/nope/report", "township").status_code == 404

    ready = httpx.get(api["url"] + "/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["checks"] == {"redis": "ok", "kafka": "ok"}
    metrics = httpx.get(api["url"] + "/metrics", timeout=20).text
    for name in ("warning_queue_depth", "warning_deliveries_total", "warning_seconds_to_reach_bucket",
                 "warning_escalations_total", "warning_pipeline_lag_messages"):
        assert name in metrics
    for topic in ("feeds.observations", "feeds.cap", "warning.signals"):  # a value per input, not just the name
        assert f'warning_pipeline_lag_messages{{topic="{settings.topic_prefix}{topic}"}}' in metrics
    paths = httpx.get(api["url"] + "/openapi.json").json()["paths"]
    assert {"/v1/feeds/observations", "/v1/feeds/cap", "/v1/alerts", "/v1/alerts/{alert_id}/ack",
            "/v1/alerts/{alert_id}/report", "/readyz", "/metrics"} <= set(paths)
