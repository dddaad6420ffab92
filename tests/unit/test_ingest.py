from __future__ import annotations

import base64

import orjson

from warning.ingest import parse_observations, rejection

GOOD = {"station_id": "S1", "kind": "rainfall", "value": 12.5, "unit": "mm",
        "observed_at": "2026-07-01T08:00:00+08:00", "period_s": 3600, "lat": 22.5, "lon": 113.9}


def test_one_object_is_parsed_and_extra_fields_are_kept() -> None:
    parsed = parse_observations(orjson.dumps({**GOOD, "quality": "checked"}))
    assert parsed.refused == []
    (reading,) = parsed.observations
    assert reading.value == 12.5 and reading.observed_at.utcoffset().total_seconds() == 8 * 3600  # type: ignore[union-attr]
    assert reading.model_extra == {"quality": "checked"}


def test_a_bad_item_in_a_batch_is_refused_alone_with_its_index_and_field() -> None:
    batch = [GOOD, {**GOOD, "value": "lots"}, {**GOOD, "observed_at": "2026-07-01T08:00:00"}, 7, GOOD]
    parsed = parse_observations(orjson.dumps(batch))
    assert len(parsed.observations) == 2
    reasons = [reason for _, reason in parsed.refused]
    assert reasons[0].startswith("item 1: value:")
    assert reasons[1].startswith("item 2: observed_at:") and "timezone" in reasons[1]
    assert reasons[2] == "item 3: expected a JSON object, got int"
    assert orjson.loads(parsed.refused[0][0])["value"] == "lots"  # the item itself is kept


def test_not_json_empty_and_non_finite_are_refused_with_reasons() -> None:
    assert parse_observations(b"not json").refused[0][1].startswith("not valid JSON")
    assert parse_observations(b"").refused[0][1] == "empty message"
    nan = parse_observations(orjson.dumps({**GOOD, "value": 1e400}) if False else
                             b'{"station_id":"S","kind":"k","value":NaN,"observed_at":"2026-07-01T00:00:00Z"}')
    assert nan.observations == [] and nan.refused


def test_missing_fields_are_named() -> None:
    (_, reason), = parse_observations(b'{"station_id": "S1"}').refused
    assert "kind: Field required" in reason and "observed_at: Field required" in reason


def test_rejection_keeps_non_utf8_bytes_exactly() -> None:
    payload = "温度".encode("gb18030")
    record = rejection("ingest", "why", "feeds.observations", b"k", payload)
    assert record.payload_encoding == "base64" and base64.b64decode(record.payload) == payload
    assert record.key == "k"
