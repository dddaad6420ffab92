"""Audience policy and spatial targeting, pure: the demo directory, people and grids."""

from __future__ import annotations

from collections import defaultdict
from importlib import resources
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_cap import version
from warning.areas import area_prefix
from warning.models import Tier
from warning.targeting.audience import audience_tier, personal, select
from warning.targeting.directory import load_directory
from warning.targeting.grids import GridFileError, GridRegistry
from warning.targeting.message import render_text

DIRECTORY = load_directory()
DATA = resources.files("warning.data")
GRIDS = GridRegistry.from_geojson(DATA.joinpath("demo-grids.geojson").read_bytes())
PEOPLE = [orjson.loads(line) for line in DATA.joinpath("demo-people.jsonl").read_bytes().splitlines()]


def people_of(grid_ids: set[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    by_role: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in PEOPLE:
        if p["role"] == "officer" or p.get("grid") in grid_ids or grid_ids & set(p.get("grids", [])):
            by_role[p["role"]].append(p)
    return by_role["resident"], by_role["grid_worker"], by_role["officer"]


def recipients(tier: Tier, area: str = "440305001", polygons: list[Any] | None = None,
               circles: list[Any] | None = None) -> set[tuple[str, str]]:
    """Who is told: select() for endpoints, workers and officers; the policy's resident set
    (what fan-out reads from Redis) for residents."""
    grids = GRIDS.for_alert(area, polygons or [], circles or [])
    residents, workers, officers = people_of({g.id for g in grids})
    policy = DIRECTORY.audience[tier]
    chosen = [r for r in residents
              if policy.residents == "all" or (policy.residents == "opted_in" and r.get("opted_in"))]
    told = {(t.recipient_id, t.channel) for t in select(policy, area, grids, workers, officers, len(chosen))}
    return told | {(t.recipient_id, t.channel) for t in (personal(r) for r in chosen) if t}


def test_blue_reaches_grid_workers_endpoints_and_the_township_officer_only() -> None:
    assert recipients(Tier.blue) == {
        ("grid:440305001001", "grid"), ("grid:440305001002", "grid"),
        ("gw-nt-01", "sms"), ("gw-nt-02", "push"), ("off-nt", "sms")}


def test_yellow_adds_opted_in_residents_red_adds_everyone_and_every_level() -> None:
    assert recipients(Tier.yellow) - recipients(Tier.blue) == {("res-nt-01", "push")}
    red = recipients(Tier.red)
    assert {("off-ns", "sms"), ("off-sz", "sms"), ("res-nt-02", "sms"), ("res-nt-03", "push"),
            ("res-nt-04", "push")} <= red
    assert not any(r.startswith(("res-yh", "gw-yh", "off-yh")) for r, _ in red)  # the other township


def test_district_alert_reaches_township_officers_inside_it() -> None:
    assert {("off-nt", "sms"), ("off-yh", "sms")} <= recipients(Tier.blue, area="440305")


def test_unmapped_area_goes_to_city_duty_officers() -> None:
    assert recipients(Tier.blue, area="station:UNKNOWN") == {("off-sz", "sms")}


def test_cancel_reaches_the_loudest_versions_audience() -> None:
    assert audience_tier(Tier.none, Tier.red, cancel=True) == Tier.red
    assert audience_tier(Tier.yellow, Tier.red, cancel=False) == Tier.yellow


def test_gbt2260_padding_is_not_part_of_the_prefix() -> None:
    assert (area_prefix("440300"), area_prefix("440000"), area_prefix("440305"),
            area_prefix("440305001")) == ("4403", "44", "440305", "440305001")
    assert ("off-sz", "sms") in recipients(Tier.red, area="440300")  # a city-wide alert


def test_cap_polygon_and_circle_reach_the_grids_they_touch() -> None:
    # A CAP polygon over the west half of Nantou grid 1 only, with no geocode we know.
    west = [(22.536, 113.911), (22.544, 113.911), (22.544, 113.915), (22.536, 113.915), (22.536, 113.911)]
    got = recipients(Tier.blue, area="unmapped:szmb", polygons=[west])
    assert ("grid:440305001001", "grid") in got and ("grid:440305001002", "grid") not in got
    # A 1 km circle around the Yuehai rain gauge.
    got = recipients(Tier.blue, area="unmapped:szmb", circles=[(22.524, 113.941, 1.0)])
    assert {("grid:440305002001", "grid"), ("gw-yh-01", "sms")} <= got


def test_a_station_on_a_grid_border_is_in_both_grids() -> None:
    assert [g.id for g in GRIDS.at_point(22.540, 113.920)] == ["440305001001", "440305001002"]
    assert [g.id for g in GRIDS.at_point(22.541, 113.918)] == ["440305001001"]
    assert GRIDS.at_point(22.0, 113.0) == []


def test_circle_radius_is_in_kilometres() -> None:
    # Grid 440305002001 starts at lon 113.935; from lon 113.925 that is ~1.03 km east at 22.52° N.
    assert GRIDS.in_circle(22.52, 113.925, 0.9) == []
    assert [g.id for g in GRIDS.in_circle(22.52, 113.925, 1.1)] == ["440305002001"]


@pytest.mark.parametrize(("doc", "message"), [
    (b"[]", "expected a GeoJSON FeatureCollection"),
    (b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"grid_id":"12","name":"x"},'
     b'"geometry":null}]}', "feature 0: properties: grid_id"),
    (b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"grid_id":"440305001001",'
     b'"name":"x","township":"440306001"},"geometry":{"type":"Point","coordinates":[1,2]}}]}',
     "township 440306001 does not contain grid 440305001001"),
    (b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"grid_id":"440305001001",'
     b'"name":"x"},"geometry":{"type":"Point","coordinates":[1,2]}}]}', "must be a Polygon or MultiPolygon"),
])
def test_bad_grid_files_name_the_feature_and_field(doc: bytes, message: str) -> None:
    with pytest.raises(GridFileError, match=message):
        GridRegistry.from_geojson(doc, "grids.geojson")


def test_texts_in_both_languages() -> None:
    red = version(Tier.red, 1, "Alert")
    assert render_text(red, "zh-CN", "南头街道").startswith("【红色预警】南头街道发布暴雨红色预警")
    assert render_text(red, "en", "Nantou").startswith("[RED warning] rainstorm in Nantou")
    assert "解除" in render_text(version(Tier.none, 2, "Cancel"), "zh-CN", "南头街道")


def test_resident_stub_is_prepared_once_with_channel_fallback_and_language() -> None:
    from warning.targeting.directory import Person
    from warning.targeting.recipients import resident_stub

    person = Person(id="r1", role="resident", grid="440305001001", phone="+8613800000001", push_token="tok",
                    channels=["push", "sms"], language="en")
    channel, recipient, fields = resident_stub(person).split(b"\t", 2)  # type: ignore[union-attr]
    assert (channel, recipient) == (b"push", b"r1")
    assert orjson.loads(fields) == {"recipient": "r1", "address": "tok", "language": "en",
                                    "fallback": [["sms", "+8613800000001"]]}
    no_address = Person(id="r2", role="resident", grid="440305001001", channels=["push"])
    assert resident_stub(no_address) is None


@settings(deadline=None)  # the chosen machine is shared; what matters is the equality
@given(st.lists(st.from_regex(r"44030[0-9]{7}", fullmatch=True), min_size=1, max_size=60, unique=True),
       st.from_regex(r"4403(00|0[0-9]{1,8})", fullmatch=True))
def test_grids_of_an_area_found_by_bisection_match_a_full_scan(ids: list[str], area: str) -> None:
    from warning.areas import inside
    from warning.bench import gridworld

    features = orjson.loads(gridworld.grids(len(ids)))["features"]
    for feature, grid_id in zip(features, ids, strict=True):
        feature["properties"]["grid_id"] = grid_id
    registry = GridRegistry.from_geojson(orjson.dumps({"type": "FeatureCollection", "features": features}))
    assert [g.id for g in registry.in_area(area)] == sorted(i for i in ids if inside(i, area))


def test_bench_webhook_sink_reads_both_payloads() -> None:
    from warning.bench.gridworld import percentile, sample
    from warning.bench.webhook_sink import keys_of

    alertmanager = {"version": "4", "alerts": [{"labels": {"alertname": "B", "seq": "7"}},
                                               {"labels": {"alertname": "B", "seq": "8"}}]}
    assert keys_of(alertmanager) == ["7", "8"]
    assert keys_of({"alert_id": "gas-440305000001-x", "grid": "440305000001"}) == ["440305000001"]
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99)) == (51.0, 99.0)
    assert sample(values, 5) == [1.0, 25.0, 50.0, 75.0, 100.0]
