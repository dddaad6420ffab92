"""Alert versions on the real Kafka: references, a worker crash mid-series, the CAP chain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaAdminClient

from tests.acceptance.conftest import cli, consume_all, logs
from tests.conftest import seed, settings_env, wait_for
from tests.data import CAP_CORPUS
from tests.unit.test_cap import ZH_CAP
from warning.config import Settings
from warning.runner import Processes

pytestmark = pytest.mark.integration


def push_readings(settings: Settings, tmp_path: Path, values: list[tuple[float, int]], t0: datetime) -> None:
    feed = tmp_path / f"feed-{values[0][1]}.jsonl"
    feed.write_bytes(b"".join(orjson.dumps({
        "station_id": "GAS-NT-001", "kind": "gas_lel", "value": v, "unit": "%LEL",
        "observed_at": (t0 + timedelta(seconds=s)).isoformat()}) + b"\n" for v, s in values))
    assert cli(settings, "feed", "push", str(feed)).returncode == 0


def distinct_versions(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """warning.alerts is at-least-once: a crash may repeat a version, never change it — not even
    its issued_at (CAP's sent), which the next version's references repeat."""
    by_version: dict[tuple[str, int], dict[str, Any]] = {}
    for record in records:
        key = (record["alert_id"], record["version"])
        if key in by_version:
            assert record == by_version[key]
        by_version.setdefault(key, record)
    return sorted(by_version.values(), key=lambda r: r["version"])


def test_readings_give_versions_with_references_even_across_a_worker_crash(
        settings: Settings, pipeline: Processes, tmp_path: Path) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0)
    push_readings(settings, tmp_path, [(12.0, 0), (30.0, 10)], t0)  # blue, then orange
    consume_all(settings, "warning.alerts", 2, timeout=90)
    pipeline.kill("worker")  # kill -9 mid-series
    pipeline.start("worker", "worker")
    push_readings(settings, tmp_path, [(60.0, 20)], t0)  # red
    # The new worker takes over after the session timeout, recovers its tables, goes on.
    def three_versions() -> list[dict[str, Any]] | None:
        found = distinct_versions(consume_all(settings, "warning.alerts", 3, 120))
        return found if len(found) == 3 else None

    versions = wait_for(three_versions, 120, "the third version", lambda: logs(tmp_path))
    alert_id = f"gas-440305001-{t0.strftime('%Y%m%dT%H%M%SZ')}"
    assert [(v["alert_id"], v["version"], v["tier"], v["msg_type"]) for v in versions] == [
        (alert_id, 1, "blue", "Alert"), (alert_id, 2, "orange", "Update"), (alert_id, 3, "red", "Update")]
    assert [[r["identifier"] for r in v["references"]] for v in versions] == [
        [], [f"{alert_id}.v1"], [f"{alert_id}.v1", f"{alert_id}.v2"]]
    assert versions[2]["caused_at"] == (t0 + timedelta(seconds=20)).isoformat().replace("+00:00", "Z")


COLOURS = {"Extreme": ("红色", "Red"), "Severe": ("橙色", "Orange"), "Moderate": ("黄色", "Yellow"),
           "Minor": ("蓝色", "Blue")}


def cap_message(msg_type: str, identifier: str, severity: str, references: str = "") -> bytes:
    now = datetime.now(UTC).astimezone().replace(microsecond=0)
    text = (ZH_CAP.replace("<identifier>44030041600000_20260701080000</identifier>",
                           f"<identifier>{identifier}</identifier>")
            .replace("<msgType>Alert</msgType>", f"<msgType>{msg_type}</msgType>")
            .replace("<scope>Public</scope>", f"<scope>Public</scope>{references}")  # the schema's order
            .replace("<severity>Severe</severity>", f"<severity>{severity}</severity>")
            # the headline's colour says the tier (it wins over severity): keep the two agreeing
            .replace("暴雨橙色预警", f"暴雨{COLOURS[severity][0]}预警")
            .replace("Orange rainstorm", f"{COLOURS[severity][1]} rainstorm")
            .replace("2026-07-01T08:00:00+08:00", now.isoformat())
            .replace("2026-07-01T20:00:00+08:00", (now + timedelta(hours=6)).isoformat())
            .replace("<value>440305</value>", "<value>440305002</value>"))
    return text.encode("gb18030")


def test_cap_alert_update_cancel_drive_one_alert_and_hostile_cap_is_rejected(
        settings: Settings, pipeline: Processes, tmp_path: Path) -> None:
    sent = datetime.now(UTC).astimezone().replace(microsecond=0).isoformat()

    def refs(identifier: str) -> str:
        return f"<references>szmb@weather.sz.gov.cn,{identifier},{sent}</references>"

    corpus = CAP_CORPUS / "google-cap-library"
    files = {
        "alert": cap_message("Alert", "SZ-1", "Severe"),
        "update": cap_message("Update", "SZ-2", "Extreme", refs("SZ-1")),
        "cancel": cap_message("Cancel", "SZ-3", "Minor", refs("SZ-2")),
        "hostile": (corpus / "xee.cap").read_bytes(),
    }
    for name in ("hostile", "alert", "update", "cancel"):
        path = tmp_path / f"{name}.xml"
        path.write_bytes(files[name])
        pushed = cli(settings, "feed", "push", str(path))
        assert pushed.returncode == 0, pushed.stderr
        if name != "cancel":
            want = {"hostile": 0, "alert": 1, "update": 2}[name]
            if want:  # wait, so the chain index knows SZ-1 before its Update arrives
                consume_all(settings, "warning.alerts", want, timeout=90)
    versions = distinct_versions(consume_all(settings, "warning.alerts", 3, timeout=60))
    assert [(v["hazard"], v["area"], v["version"], v["tier"], v["msg_type"]) for v in versions] == [
        ("rainstorm", "440305002", 1, "orange", "Alert"), ("rainstorm", "440305002", 2, "red", "Update"),
        ("rainstorm", "440305002", 3, "none", "Cancel")]
    assert len({v["alert_id"] for v in versions}) == 1
    assert datetime.fromisoformat(versions[0]["expires"]) > datetime.now(UTC) + timedelta(hours=5)
    (rejected,) = consume_all(settings, "warning.rejected", 1)
    assert rejected["stage"] == "cap" and rejected["reason"].startswith("refused: DTDForbidden")
    assert rejected["source_topic"] == f"{settings.topic_prefix}feeds.cap"


def committed(settings: Settings, topic: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        offsets = admin.list_group_offsets(settings.app_id).get(settings.app_id, {})
    finally:
        admin.close()
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == settings.topic_prefix + topic)


def test_window_state_not_yet_in_the_changelog_survives_kill_9(
        settings: Settings, tmp_path: Path) -> None:
    """The write-back cache acknowledges readings only after their window is in the changelog:
    kill -9 before a flush, and the restarted worker replays them into the window."""
    env = {**settings_env(settings), "WARNING_EVALUATE_FLUSH_S": "60", "WARNING_EVALUATE_FLUSH_EVENTS": "1000"}
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)

    def reading(kind: str, value: float, at: datetime) -> bytes:
        return orjson.dumps({"station_id": "RAIN-NT-002", "kind": kind, "value": value, "unit": "",
                             "observed_at": at.isoformat()}) + b"\n"

    seed(settings)
    with Processes(tmp_path / "logs", env=env) as procs:
        procs.start_pipeline(settings)
        first = tmp_path / "first.jsonl"  # 30 mm (no warning yet), then a gas reading as a sentinel
        first.write_bytes(reading("rainfall", 30.0, t0) + reading("gas_lel", 12.0, t0))
        assert cli(settings, "feed", "push", str(first)).returncode == 0
        (gas,) = consume_all(settings, "warning.alerts", 1, timeout=90)  # so the 30 mm was evaluated
        assert (gas["hazard"], gas["tier"]) == ("gas", "blue")
        # Wait for a commit cycle after that (the lifecycle agent's offset on warning.signals):
        # had evaluate acknowledged the readings early, their offsets would be committed now.
        wait_for(lambda: committed(settings, "warning.signals") > 0, 60, "an offset commit")
        procs.kill("worker")  # long before the 60 s flush: the 30 mm is only in memory
        procs.start("worker", "worker")
        second = tmp_path / "second.jsonl"
        second.write_bytes(reading("rainfall", 25.0, t0 + timedelta(hours=1)))
        assert cli(settings, "feed", "push", str(second)).returncode == 0
        alerts = consume_all(settings, "warning.alerts", 2, timeout=90)
    rain = [a for a in alerts if a["hazard"] == "rainstorm"]
    # 30 + 25 = 55 mm in 3 h: orange, which needs the replayed 30 mm (25 mm alone is nothing).
    assert [(a["area"], a["tier"], a["msg_type"]) for a in rain] == [("440305001", "orange", "Alert")]


def test_lifecycle_state_goes_to_the_changelog_partition_of_its_signal(settings: Settings, pipeline: Processes,
                                                                      tmp_path: Path) -> None:
    """Lifecycle takes signals in batches that span partitions; each alert's state must land in
    its own signal's changelog partition, or a worker taking that partition over after a
    rebalance would start the alert afresh (a second v1) instead of updating it."""
    from kafka import KafkaConsumer

    from warning.models import TierSignal
    from warning.pipeline import signal_records

    t0 = datetime.now(UTC).replace(microsecond=0).isoformat()
    readings = [  # four hazards and areas of the demo directory, all crossing at once
        {"station_id": "GAS-NT-001", "kind": "gas_lel", "value": 60.0, "unit": "%LEL"},
        {"station_id": "RAIN-YH-001", "kind": "rainfall", "value": 120.0, "unit": "mm", "period_s": 3600},
        {"station_id": "RAIN-NT-002", "kind": "rainfall", "value": 120.0, "unit": "mm", "period_s": 3600},
        {"station_id": "WIND-NS-001", "kind": "wind_speed", "value": 35.0, "unit": "m/s"}]
    feed = tmp_path / "burst.jsonl"
    feed.write_bytes(b"".join(orjson.dumps({**r, "observed_at": t0}) + b"\n" for r in readings))
    assert cli(settings, "feed", "push", str(feed)).returncode == 0
    issued = consume_all(settings, "warning.alerts", 4, timeout=90)
    keys = {v["key"] for v in issued}
    assert len(keys) == 4, issued

    def partitions(topic: str, want: set[str], keys_of: Any) -> dict[str, set[int]]:
        consumer = KafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap,
                                 auto_offset_reset="earliest", group_id=None)
        found: dict[str, set[int]] = {}
        try:
            def poll() -> bool:
                for batch in consumer.poll(timeout_ms=200).values():
                    for m in batch:
                        for key in keys_of(m):
                            found.setdefault(key, set()).add(m.partition)
                return want <= set(found)

            wait_for(poll, 60, f"every key on {topic}", lambda: found)
        finally:
            consumer.close()
        return {k: v for k, v in found.items() if k in want}

    def signal_keys(m: Any) -> list[str]:  # a record holds the signals of one partition
        return [TierSignal.model_validate(item).alert_key for item in signal_records.parse(m.value).items]

    by_signal = partitions(settings.topic_prefix + "warning.signals", keys, signal_keys)
    by_state = partitions(f"{settings.app_id}-alert-lifecycle-changelog", keys, lambda m: [orjson.loads(m.key)])
    assert len({p for ps in by_signal.values() for p in ps}) > 1  # the batch did span partitions
    assert by_state == by_signal


def test_a_signals_record_steps_its_good_signals_and_refuses_the_bad_ones_one_by_one(
        settings: Settings, pipeline: Processes) -> None:
    """The signals topic carries a message's signals grouped per partition: a malformed one
    and one on a partition that does not own its alert each go to warning.rejected with the
    reason, and the good one beside them still becomes an alert; so does a record that is
    not JSON at all, with its bytes."""
    from kafka import KafkaProducer

    from warning.models import Tier, TierSignal
    from warning.partitions import partition_of

    parts = settings.partitions
    home = partition_of("gas:440305001", parts)
    stray_area = next(a for a in (f"44030500{i}" for i in range(2, 10)) if partition_of(f"gas:{a}", parts) != home)
    now = datetime.now(UTC)
    good, stray = (TierSignal(hazard="gas", area=area, station_id="GAS-NT-009", rule_id="gas_lel", tier=Tier.red,
                              value=70.0, at=now) for area in ("440305001", stray_area))
    record = b"[" + b",".join([good.model_dump_json().encode(), b'{"hazard": "gas"}',
                               stray.model_dump_json().encode()]) + b"]"
    prod = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    prod.send(settings.topic_prefix + "warning.signals", key=b"gas:440305001", value=record, partition=home).get(10)
    prod.send(settings.topic_prefix + "warning.signals", key=b"gas:440305001", value=b"{not json",
              partition=home).get(10)
    prod.close()
    (version,) = consume_all(settings, "warning.alerts", 1, timeout=90)
    assert (version["key"], version["tier"], version["version"]) == ("gas:440305001", "red", 1)
    rejected = consume_all(settings, "warning.rejected", 3)
    assert [r["stage"] for r in rejected] == ["lifecycle", "lifecycle", "lifecycle"]
    assert rejected[2]["reason"].startswith("bad signals record:") and rejected[2]["payload"] == "{not json"
    assert rejected[0]["reason"].startswith("bad signal:") and orjson.loads(rejected[0]["payload"]) == {"hazard": "gas"}
    assert rejected[1]["reason"] == f"signal for gas:{stray_area} on partition {home}, its state lives on " \
                                    f"{partition_of(f'gas:{stray_area}', parts)}"
    assert orjson.loads(rejected[1]["payload"])["area"] == stray_area
