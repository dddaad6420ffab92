"""A city-wide alert whose audience is larger than a work unit: two Faust workers share the
enqueueing (units on warning.fanout), and each resident's phone gets the warning once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from tests.acceptance.conftest import consume_all, logs
from tests.conftest import city_of_residents, settings_env, wait_for
from warning.bench.kafka_probe import stable_members
from warning.bench.ours import send
from warning.config import Settings
from warning.runner import Processes

pytestmark = pytest.mark.acceptance
GRIDS, PER_GRID, UNIT = 40, 25, 100  # 1,000 residents in 10 units of 4 grids


def city(settings: Settings, tmp_path: Path) -> Settings:
    directory = city_of_residents(settings, tmp_path, GRIDS, PER_GRID, '[{id: CITY-GAS-1, area: "440305"}]')
    return settings.model_copy(update={"directory_file": directory, "fanout_unit_residents": UNIT})


def unit_lines(log: Path, alert_id: str, event: bytes = b'"fanout_unit_enqueued"') -> list[dict[str, object]]:
    lines = [orjson.loads(line) for line in log.read_bytes().splitlines() if event in line]
    return [line for line in lines if line.get("alert_id") == alert_id]


def test_a_city_wide_alert_is_enqueued_by_both_workers_and_reaches_each_resident_once(
        settings: Settings, tmp_path: Path) -> None:
    settings = city(settings, tmp_path)
    with Processes(tmp_path / "logs", env=settings_env(settings)) as procs:
        procs.start("worker-a", "worker")
        procs.start("worker-b", "worker")
        procs.start("consumer-push", "consumer", "push")
        wait_for(lambda: stable_members(settings.kafka_bootstrap, settings.app_id) == 2, 120,
                 "both workers in the group", lambda: logs(tmp_path))
        send(settings, [{"station_id": "CITY-GAS-1", "kind": "gas_lel", "value": 80.0, "unit": "%LEL",
                         "observed_at": datetime.now(UTC).isoformat()}])
        sink = settings.sink_dir / "push.jsonl"

        def arrived() -> list[dict[str, object]]:
            return [orjson.loads(line) for line in sink.read_bytes().splitlines()] if sink.exists() else []

        wait_for(lambda: len(arrived()) >= GRIDS * PER_GRID, 120, "every resident's push", lambda: logs(tmp_path))
        messages = arrived()
        alert_id = str(messages[0]["alert_id"])
        bad = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
        bad.send(settings.topic_prefix + "warning.fanout", key=b"x.v1.u0", value=b'{"alert_id": "x"')
        bad.flush()
        bad.close()
        [rejected] = consume_all(settings, "warning.rejected", 1, timeout=60)
        by_worker = {name: unit_lines(tmp_path / "logs" / f"{name}.log", alert_id) for name in ("worker-a", "worker-b")}
        first = [line for name in ("worker-a", "worker-b")
                 for line in unit_lines(tmp_path / "logs" / f"{name}.log", alert_id, b'"fanout_first_enqueued"')]
    assert Counter(m["recipient"] for m in messages) == {f"r{g}-{i}": 1 for g in range(GRIDS) for i in range(PER_GRID)}
    assert {m["alert_id"] for m in messages} == {alert_id} and alert_id.startswith("gas-440305-")
    assert all(str(m["text"]).startswith("【红色预警】") for m in messages)
    units = {int(str(line["unit"])) for lines in by_worker.values() for line in lines}
    assert units == set(range(10))  # every unit enqueued (a replay after a rebalance would add nobody) …
    assert all(by_worker.values()), by_worker  # … and by both workers
    # the owning worker queued the first grid's residents itself, the units everyone else, once
    assert first and sum(int(str(line["enqueued"])) for line in first) == PER_GRID  # a replayed step adds nobody
    assert sum(int(str(line["enqueued"])) for lines in by_worker.values() for line in lines) == GRIDS * PER_GRID \
        - PER_GRID
    # a unit that is not one is refused, kept whole, and the agent goes on
    assert (rejected["stage"], rejected["source_topic"], rejected["payload"]) == (
        "fanout", settings.topic_prefix + "warning.fanout", '{"alert_id": "x"')
    assert rejected["reason"].startswith("bad fan-out unit: JSONDecodeError")
