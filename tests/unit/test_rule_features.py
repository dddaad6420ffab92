"""Sustained, multi-day, gust + mean, match, areas, overrides and extends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.unit.helpers import obs
from warning.lifecycle import step
from warning.models import Observation, Tier
from warning.rules.evaluate import EvalConfig, evaluate_station
from warning.rules.pack import RulePack, RulePackError, load_pack

DEFAULT = load_pack()
SHANGHAI_MIDNIGHT = datetime(2026, 7, 1, 16, 0, tzinfo=UTC)  # 2026-07-02 00:00 +08:00


def final_tier(pack: RulePack, readings: list[Observation], area: str = "440305001",
               rule_id: str | None = None) -> Tier:
    state: dict[str, object] = {}
    tier = Tier.none
    for reading in readings:
        for signal in evaluate_station(pack, state, [reading], lambda o: area, EvalConfig(refresh_s=1e9)).signals:
            if rule_id is None or signal.rule_id == rule_id:
                tier = signal.tier
    return tier


def temp(value: float, at: datetime) -> Observation:
    return Observation(station_id="T1", kind="temperature", value=value, unit="°C", observed_at=at)


def test_heat_yellow_needs_three_local_days_at_35() -> None:
    day = SHANGHAI_MIDNIGHT + timedelta(hours=6)  # 14:00 local
    two_days = [temp(35.5, day), temp(36.0, day + timedelta(days=1))]
    assert final_tier(DEFAULT, two_days) == Tier.none
    three = [*two_days, temp(35.0, day + timedelta(days=2))]
    assert final_tier(DEFAULT, three) == Tier.yellow
    gap = [temp(35.5, day), temp(30.0, day + timedelta(days=1)), temp(36.0, day + timedelta(days=2))]
    assert final_tier(DEFAULT, gap) == Tier.none


def test_heat_days_are_local_days_not_utc_days() -> None:
    # 23:30 and 00:30 local are two local days (but one UTC day: 15:30 and 16:30 UTC).
    late = SHANGHAI_MIDNIGHT - timedelta(minutes=30)
    readings = [temp(35.1, late - timedelta(days=1)), temp(35.2, late), temp(35.3, late + timedelta(hours=1))]
    assert final_tier(DEFAULT, readings) == Tier.yellow


def test_heat_orange_and_red_are_the_24h_maximum() -> None:
    t = SHANGHAI_MIDNIGHT
    assert final_tier(DEFAULT, [temp(37.0, t), temp(30.0, t + timedelta(hours=23))]) == Tier.orange
    assert final_tier(DEFAULT, [temp(40.0, t), temp(30.0, t + timedelta(hours=24))]) == Tier.none


def test_gust_and_mean_are_two_rules_of_one_hazard_and_the_louder_counts() -> None:
    state: dict[str, object] = {}
    lifecycle: dict[str, object] = {}
    gust = obs(kind="wind_gust", value=21.0)  # force 9 gust: yellow
    mean = obs(kind="wind_speed", value=11.0, minutes=1)  # force 6 mean: blue
    tiers = []
    for reading in (gust, mean):
        for signal in evaluate_station(DEFAULT, state, [reading], lambda o: "440305001").signals:
            version = step(lifecycle, signal, signal.at.timestamp())
            tiers.append((signal.rule_id, signal.tier, version.tier if version else None))
    assert tiers == [("gale-gust", Tier.yellow, Tier.yellow), ("gale-mean", Tier.blue, None)]
    assert lifecycle["tier"] == "yellow"  # the blue mean did not pull the alert down


def test_typhoon_rules_need_the_typhoon_tag() -> None:
    plain = obs(kind="wind_gust", value=42.0)
    tagged = obs(kind="wind_gust", value=42.0, system="typhoon")
    assert final_tier(DEFAULT, [plain], rule_id="typhoon-gust") == Tier.none
    assert final_tier(DEFAULT, [tagged], rule_id="typhoon-gust") == Tier.red
    assert final_tier(DEFAULT, [tagged], rule_id="gale-gust") == Tier.red


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_sustained_needs_the_whole_window_above(tmp_path: Path) -> None:
    pack = load_pack(write(tmp_path, "p.yaml", """name: p
rules:
  - {id: level, hazard: flood, kind: water_level, aggregation: sustained,
     tiers: {orange: {window: 30m, threshold: 5.0}}}
"""))
    level = [obs(kind="water_level", value=v, minutes=m) for m, v in ((0, 5.1), (10, 5.2), (20, 4.9), (31, 5.3))]
    assert final_tier(pack, level) == Tier.none  # 4.9 at 20 min breaks it
    steady = [obs(kind="water_level", value=5.1, minutes=m) for m in (0, 10, 20, 30)]
    assert final_tier(pack, steady) == Tier.orange
    assert final_tier(pack, steady[:3]) == Tier.none  # only 20 min of history


def test_a_district_overrides_thresholds_without_copying_the_pack(tmp_path: Path) -> None:
    city = load_pack(write(tmp_path, "shenzhen.yaml", """name: shenzhen
extends: default
overrides:
  - {area: "440300", rule: rainstorm, tiers: {red: {threshold: 90}}}
  - {area: "440305", rule: rainstorm, tiers: {red: {threshold: 80}, orange: {threshold: 40}}}
"""))
    assert [r.id for r in city.rules] == [r.id for r in DEFAULT.rules]
    rain = [obs(value=45.0), obs(value=40.0, minutes=60)]  # 85 mm in 1 h
    assert final_tier(city, rain, area="440305001") == Tier.red  # Nanshan: red from 80
    assert final_tier(city, rain, area="440303001") == Tier.orange  # elsewhere in the city: 90
    assert final_tier(city, rain, area="440100001") == Tier.orange  # another city: the default 100
    assert final_tier(city, [obs(value=42.0)], area="440305001") == Tier.orange  # orange from 40
    assert final_tier(DEFAULT, rain, area="440305001") == Tier.orange


def test_rule_areas_limit_where_it_applies(tmp_path: Path) -> None:
    pack = load_pack(write(tmp_path, "p.yaml", """name: p
rules:
  - {id: river, hazard: flood, kind: water_level, areas: ["440305"], tiers: {red: {threshold: 3}}}
"""))
    assert final_tier(pack, [obs(kind="water_level", value=3.5)], area="440305001") == Tier.red
    assert final_tier(pack, [obs(kind="water_level", value=3.5)], area="440306001") == Tier.none


@pytest.mark.parametrize(("text", "message"), [
    ("name: p\nextends: default\noverrides:\n  - {area: '440305', rule: nope, tiers: {red: {threshold: 1}}}\n",
     "no rule 'nope' to override"),
    ("name: p\nextends: default\noverrides:\n  - {area: '440305', rule: rainstorm, tiers: {red: {window: soon}}}\n",
     "expected a duration"),
    ("name: p\nextends: p.yaml\n", "goes round in a circle"),
    ("name: p\nrules:\n  - {id: h, hazard: heat, kind: t, aggregation: max, tiers: {red: {threshold: 1}}}\n",
     "rule h: tier red: aggregation 'max' needs a window"),
])
def test_pack_errors_say_what_and_where(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(RulePackError) as err:
        load_pack(write(tmp_path, "p.yaml", text))
    assert message in str(err.value) and str(tmp_path / "p.yaml") in str(err.value)
