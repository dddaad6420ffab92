from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.helpers import obs
from warning.models import Tier
from warning.rules.evaluate import EvalConfig, evaluate_station
from warning.rules.pack import RulePackError, load_pack, parse_duration

PACK = load_pack()


def run(readings: list[tuple[float, float]], kind: str = "rainfall") -> list[Tier]:
    """Feed (minutes, value) readings one by one; the tier signalled after each (or None)."""
    state: dict[str, object] = {}
    tiers = []
    for minutes, value in readings:
        result = evaluate_station(PACK, state, [obs(kind=kind, value=value, minutes=minutes)],
                                  lambda o: "A", EvalConfig(refresh_s=1e9))
        tiers.append(result.signals[-1].tier if result.signals else None)
    return tiers  # type: ignore[return-value]


def test_default_pack_loads_with_the_cma_rainstorm_criteria() -> None:
    rule = next(r for r in PACK.rules if r.id == "rainstorm")
    assert (rule.tiers[Tier.blue].threshold, rule.tiers[Tier.blue].window_s) == (50, 12 * 3600)
    assert (rule.tiers[Tier.red].threshold, rule.tiers[Tier.red].window_s) == (100, 3 * 3600)


@pytest.mark.parametrize(("total", "expected"), [(49.9, None), (50.0, Tier.orange), (99.9, Tier.orange),
                                                 (100.0, Tier.red)])
def test_rainstorm_3h_boundaries(total: float, expected: Tier | None) -> None:
    # Three hourly readings inside 3 h, the last bringing the sum to `total`.
    tiers = run([(0, 10.0), (60, 10.0), (120, round(total - 20.0, 1))])
    assert tiers[-1] == expected


def test_rain_spread_over_12h_is_blue_and_6h_is_yellow() -> None:
    assert run([(0, 25.0), (11 * 60, 25.0)])[-1] == Tier.blue  # 50 mm in 12 h, not in 6 h
    assert run([(0, 25.0), (5 * 60, 25.0)])[-1] == Tier.yellow  # 50 mm in 6 h, not in 3 h


def test_reading_leaving_the_window_lowers_the_tier() -> None:
    # At 3 h the 60 mm of t=0 has left (t-3h, t] but is still in the 6 h window: yellow.
    # At 6 h it has left that too, but is in the 12 h window: blue.
    tiers = run([(0, 60.0), (3 * 60, 0.0), (6 * 60, 0.0), (12 * 60, 0.0)])
    assert tiers == [Tier.orange, Tier.yellow, Tier.blue, Tier.none]


def test_duplicate_reading_is_counted_once() -> None:
    state: dict[str, object] = {}
    for _ in range(3):
        evaluate_station(PACK, state, [obs(value=30.0, minutes=0)], lambda o: "A")
    result = evaluate_station(PACK, state, [obs(value=19.9, minutes=10)], lambda o: "A")
    assert result.signals == []  # 30 + 19.9 = 49.9: still nothing, not 109.9
    assert state["readings"]["rainfall"] == [  # type: ignore[index]
        [obs(minutes=0).observed_at.timestamp(), obs(minutes=10).observed_at.timestamp()], [30.0, 19.9]]


def test_out_of_order_within_lateness_counts_and_too_late_is_refused() -> None:
    state: dict[str, object] = {}
    config = EvalConfig(allowed_lateness_s=3600)
    evaluate_station(PACK, state, [obs(value=30.0, minutes=120)], lambda o: "A", config)
    result = evaluate_station(PACK, state, [obs(value=20.0, minutes=90)], lambda o: "A", config)
    assert [s.tier for s in result.signals] == [Tier.orange]
    late = evaluate_station(PACK, state, [obs(value=5.0, minutes=0)], lambda o: "A", config)
    assert late.signals == []
    assert len(late.late) == 1 and "allowed lateness is 3600s" in late.late[0][1]


def test_gas_latest_value_tiers() -> None:
    assert run([(0, 9.9), (1, 10.0), (2, 25.0), (3, 50.0), (4, 3.0)], kind="gas_lel") == [
        None, Tier.blue, Tier.orange, Tier.red, Tier.none]


def test_unchanged_tier_is_refreshed_after_refresh_interval() -> None:
    state: dict[str, object] = {}
    config = EvalConfig(refresh_s=600)
    sent = [evaluate_station(PACK, state, [obs(kind="gas_lel", value=60.0, minutes=m)], lambda o: "A", config)
            for m in (0, 5, 10)]
    assert [len(r.signals) for r in sent] == [1, 0, 1]


def test_durations() -> None:
    assert parse_duration("3h") == 10800 and parse_duration("30m") == 1800 and parse_duration(90) == 90
    with pytest.raises(ValueError, match="duration"):
        parse_duration("3 hours")


def test_pack_errors_name_file_rule_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "pack.yaml"
    bad.write_text("name: p\nrules:\n  - id: rain\n    hazard: rainstorm\n    kind: rainfall\n"
                   "    aggregation: sum\n    tiers:\n      red: {window: 3h, threshold: lots}\n")
    with pytest.raises(RulePackError) as err:
        load_pack(bad)
    assert str(bad) in str(err.value) and "rule rain" in str(err.value) and "threshold" in str(err.value)


def test_pack_sum_without_window_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "pack.yaml"
    bad.write_text("name: p\nrules:\n  - {id: r, hazard: h, kind: k, aggregation: sum, tiers: {red: {threshold: 1}}}\n")
    with pytest.raises(RulePackError, match="needs a window"):
        load_pack(bad)


def test_missing_pack_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RulePackError, match="cannot read rule pack"):
        load_pack(tmp_path / "nope.yaml")
