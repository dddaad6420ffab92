"""The bench's pollers read only what a sink appended since the last poll, and count and
time exactly what a full re-read would."""

from __future__ import annotations

from pathlib import Path

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
