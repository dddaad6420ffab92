"""Readings in -> messages out, through the real processes on the real Kafka and Redis."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaProducer

from consumers.sinks import read_sink
from tests.acceptance.conftest import cli, consume_all, logs
from tests.conftest import settings_env, wait_for
from warning.config import Settings
from warning.feeds import ensure_topics, topic_copies
from warning.runner import Processes
from warning.topics import changelog_topics

pytestmark = pytest.mark.integration

# Who a red gas alert for 南头街道 (440305001) reaches in the demo directory, and how.
RED_GAS = {
    "sms": {"gw-nt-01", "off-nt", "off-ns", "off-sz", "res-nt-02"},
    "push": {"gw-nt-02", "res-nt-01", "res-nt-03", "res-nt-04"},
    "grid": {"grid:440305001001", "grid:440305001002"},
    "cell_broadcast": {"area:440305001:zh-CN", "area:440305001:en"},  # the area's cells, not people
}


def test_threshold_crossing_reaches_every_recipient_once_and_is_acknowledged(
        settings: Settings, pipeline: Processes, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    reading = {"station_id": "GAS-NT-001", "kind": "gas_lel", "value": 62.0, "unit": "%LEL",
               "observed_at": now.isoformat(), "lat": 22.541, "lon": 113.918}
    feed = tmp_path / "feed.jsonl"  # a truncated line first: refused, and the next still goes through
    feed.write_bytes(b'{"station_id": "GAS-NT-001", "kind": \n' + orjson.dumps(reading) + b"\n")
    pushed = cli(settings, "feed", "push", str(feed))
    assert orjson.loads(pushed.stdout) == {"readings": 1, "unparsed_lines": 1,
                                           "topic": f"{settings.topic_prefix}feeds.observations"}

    sinks = settings.sink_dir

    def arrived() -> bool:
        return all(len(read_sink(sinks / f"{ch}.jsonl")) >= len(who) for ch, who in RED_GAS.items())

    wait_for(arrived, 90, "messages at every channel sink", lambda: logs(tmp_path))
    alert_ids = set()
    for channel, expected in RED_GAS.items():
        messages = read_sink(sinks / f"{channel}.jsonl")
        assert Counter(m["recipient"] for m in messages) == Counter(dict.fromkeys(expected, 1)), channel
        for m in messages:
            assert (m["tier"], m["version"], m["msg_type"]) == ("red", 1, "Alert")
            text = str(m["text"])
            assert text.startswith("[RED warning] gas leak in Nantou Subdistrict" if m["language"] == "en"
                                   else "【红色预警】南头街道发布燃气泄漏红色预警")
            alert_ids.add(m["alert_id"])
    (alert_id,) = alert_ids
    assert alert_id == f"gas-440305001-{now.strftime('%Y%m%dT%H%M%SZ')}"
    assert next(m for m in read_sink(sinks / "sms.jsonl") if m["recipient"] == "off-sz")["address"] == "+8610000000204"

    (rejected,) = consume_all(settings, "warning.rejected", 1)
    assert rejected["stage"] == "ingest" and rejected["reason"].startswith("not valid JSON")
    assert rejected["payload"] == '{"station_id": "GAS-NT-001", "kind":' and rejected["key"] == "unparsed"

    assert orjson.loads(cli(settings, "alerts", "--json").stdout) == [
        {"alert_id": alert_id, "hazard": "gas", "area": "440305001", "tier": "red", "version": 1}]
    first = cli(settings, "ack", alert_id, "--by", "off-nt")
    again = cli(settings, "ack", alert_id, "--by", "off-nt")
    assert orjson.loads(first.stdout)["recorded"] is True and orjson.loads(again.stdout)["recorded"] is False

    status = orjson.loads(cli(settings, "status", alert_id, "--json").stdout)
    assert (status["tier"], status["version"]) == ("red", 1)
    assert status["channels"] == {ch: {"targeted": len(who), "sent": len(who)} for ch, who in RED_GAS.items()}
    assert [a["by"] for a in status["acks"]] == ["off-nt"]
    assert status["reach"]["p99_s"] is not None and 0 < status["reach"]["p99_s"] < 60

    (ack_event,) = consume_all(settings, "warning.acks", 1)
    assert (ack_event["alert_id"], ack_event["by"], ack_event["event"]) == (alert_id, "off-nt", "ack")
    assert pipeline.dead() == []
    # Faust made its tables' changelogs with the pipeline's copies and min ISR (3 / 2 in `make test-cluster`)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        copies = topic_copies(admin, changelog_topics(settings.app_id))
    finally:
        admin.close()
    assert copies == dict.fromkeys(changelog_topics(settings.app_id),
                                   (settings.replication_factor, settings.min_insync_replicas))


def test_unknown_alert_ack_is_a_clear_error(settings: Settings) -> None:
    result = cli(settings, "ack", "no-such-alert", "--by", "off-nt")
    assert result.returncode == 1 and "no alert 'no-such-alert'" in result.stderr


def test_bad_config_fails_at_startup_naming_the_field(settings: Settings) -> None:
    import os

    result = subprocess.run([sys.executable, "-m", "warning", "alerts"], capture_output=True, text=True,
                            env={**os.environ, "WARNING_REDIS_URL": "localhost:6379"}, timeout=60)
    assert result.returncode == 2 and "WARNING_REDIS_URL" in result.stderr


@pytest.mark.parametrize("settings", [None], indirect=True)  # the shipped release policy, as `make demo` runs
def test_demo_prints_the_summary_line(settings: Settings, tmp_path: Path) -> None:
    import os

    result = subprocess.run([sys.executable, "-m", "warning", "demo", "--timeout", "120"], cwd=tmp_path,
                            capture_output=True, text=True, env={**os.environ, **settings_env(settings)},
                            timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary) == {"alerts", "deliveries", "acks"}
    assert (summary["alerts"], summary["acks"]) == (2, 2)
    sinks = settings.sink_dir
    for channel in ("sms", "push", "grid"):
        messages = read_sink(sinks / f"{channel}.jsonl")
        assert summary["deliveries"][channel] == len(messages)
        # Every recipient of each alert's final version got it exactly once.
        finals = Counter((m["alert_id"], m["recipient"]) for m in messages
                         if (m["tier"], m["version"]) in {("red", 2), ("orange", 1)})
        assert finals and set(finals.values()) == {1}
    red = {m["recipient"] for ch in ("sms", "push", "grid") for m in read_sink(sinks / f"{ch}.jsonl")
           if m["tier"] == "red"}
    # One station's red reaches staff at once; the district officer approves it for the
    # residents, and was asked to (as the city officer was) on her own channel.
    assert {r for r in red if "#" not in r} == set().union(*(who for ch, who in RED_GAS.items()
                                                             if ch != "cell_broadcast"))
    assert {r for r in red if "#" in r} == {"off-nt#approve0", "off-ns#approve0", "off-sz#approve0"}



def test_worker_killed_and_restarted_keeps_alert_state(settings: Settings, pipeline: Processes,
                                                       tmp_path: Path) -> None:
    """kill -9 the Faust worker: its tables come back from the changelog, so the next
    reading upgrades the same alert instead of issuing a new one."""
    ensure_topics(settings)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    topic = settings.topic_prefix + "feeds.observations"
    t0 = datetime.now(UTC)

    def send(value: float, seconds: int) -> None:
        reading = {"station_id": "GAS-NT-001", "kind": "gas_lel", "value": value, "unit": "%LEL",
                   "observed_at": (t0 + timedelta(seconds=seconds)).isoformat()}
        producer.send(topic, key=b"GAS-NT-001", value=orjson.dumps(reading))
        producer.flush()

    def versions() -> list[tuple[str, int, str]]:
        grid = read_sink(settings.sink_dir / "grid.jsonl")
        return sorted({(m["alert_id"], m["version"], m["msg_type"]) for m in grid})

    send(12.0, 0)  # blue
    wait_for(lambda: len(versions()) == 1, 90, "the blue alert at the grid sink", lambda: logs(tmp_path))
    pipeline.kill("worker")
    pipeline.start("worker", "worker")
    send(60.0, 10)  # red
    wait_for(lambda: len(versions()) == 2, 90, "the red update after restart", lambda: logs(tmp_path))
    (first_id, v1, t1), (second_id, v2, t2) = versions()
    assert first_id == second_id and (v1, t1, v2, t2) == (1, "Alert", 2, "Update")
    producer.close()
