"""The bench's pollers read only what a sink appended since the last poll, and count and
time exactly what a full re-read would."""

from __future__ import annotations

from pathlib import Path

from warning.bench.fanout_city import _assignments_recovered
from warning.bench.residents import SinkLines
from warning.bench.webhook_sink import Received, read


def test_sink_lines_counts_appended_lines_without_rereading(tmp_path: Path) -> None:
    sink = tmp_path / "push.jsonl"
    lines = SinkLines(sink)
    assert lines() == 0  # no file yet: a consumer has not sent anything
    sink.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a"')
    assert lines() == 2
    with sink.open("ab") as f:
        f.write(b': 3}\n{"a": 4}\n')
    assert lines() == 4 == sink.read_bytes().count(b"\n")
    assert lines() == 4  # nothing new


def test_received_keeps_first_times_across_polls_and_waits_for_whole_lines(tmp_path: Path) -> None:
    out = tmp_path / "sink.tsv"
    received = Received(out)
    assert received() == {}
    out.write_bytes(b"g1\t1.5\ng2\t2.0\ng3\t2.")
    assert received() == {"g1": 1.5, "g2": 2.0}  # g3's line is still being written
    with out.open("ab") as f:
        f.write(b"25\ng1\t9.0\n")  # g1 again: a duplicate, its first time stays
    assert received() == {"g1": 1.5, "g2": 2.0, "g3": 2.25} == read(out)


def test_fanout_city_reads_each_workers_fan_out_times_and_units_from_their_logs(tmp_path: Path) -> None:
    from warning.bench.fanout_city import _enqueued_at, _probe_grid, _worker_lines
    from warning.bench.gridworld import grid_id
    from warning.partitions import partition_of

    (tmp_path / "worker.log").write_bytes(
        b'[2026-12-02 18:09:13,426] [1] [INFO] Faust text line\n'
        b'{"alert_id": "gas-440305-x", "event": "alert_enqueued", "timestamp": "2026-12-02T18:09:13.577820Z"}\n'
        b'{"alert_id": "gas-440305-x", "unit": 0, "event": "fanout_unit_enqueued", "timestamp": "t"}\n')
    (tmp_path / "worker-b.log").write_bytes(
        b'{"alert_id": "gas-440305-x", "unit": 1, "event": "fanout_unit_enqueued", "timestamp": "t"}\n'
        b'{"alert_id": "gas-440305000009-y", "event": "alert_enqueued", "timestamp": "2026-12-02T18:09:13.706424Z"}\n')
    units = _worker_lines(tmp_path, b'"fanout_unit_enqueued"')
    assert {name: [line["unit"] for line in lines] for name, lines in units.items()} == {"worker": [0], "worker-b": [1]}
    assert round(_enqueued_at(tmp_path, "gas-440305000009-y") - _enqueued_at(tmp_path, "gas-440305-x"), 6) == 0.128604
    probe = _probe_grid(12)  # the probe's gas alert is stepped by the partition owning the district's
    assert partition_of(f"gas:{grid_id(probe)}", 12) == partition_of("gas:440305", 12)


def test_fanout_city_waits_for_each_workers_recovery_after_its_last_assignment(tmp_path: Path) -> None:
    assigned = b"[2026-12-03 19:08:13,037] [6557] [INFO] Setting newly assigned partitions\n"
    ready = b"[2026-12-03 19:08:13,070] [6557] [INFO] [^---Recovery]: Worker ready\n"
    assert not _assignments_recovered(tmp_path)  # no logs yet
    (tmp_path / "worker.log").write_bytes(assigned + ready)
    assert not _assignments_recovered(tmp_path)  # the second worker has not logged
    (tmp_path / "worker-b.log").write_bytes(assigned + ready + b'{"event": "heartbeat"}\n')
    assert _assignments_recovered(tmp_path)
    (tmp_path / "worker-b.log").write_bytes(assigned + ready + assigned)  # a rebalance: recovering again
    assert not _assignments_recovered(tmp_path)
    (tmp_path / "worker-b.log").write_bytes(assigned + ready + assigned + ready)
    assert _assignments_recovered(tmp_path)
