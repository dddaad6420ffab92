"""Cutting a city-wide audience into work units, and the unit's record (warning/pipeline/units.py)."""

from __future__ import annotations

import pytest

from warning.models import Tier
from warning.pipeline.units import FanoutUnit, cut


def test_grids_are_grouped_in_order_up_to_a_units_worth_of_residents() -> None:
    counts = [("g1", 40), ("g2", 60), ("g3", 10), ("g4", 0), ("g5", 250), ("g6", 30), ("g7", 70)]
    # g4 has nobody; g5 alone is more than a unit: a unit of its own
    assert cut(counts, 100) == [["g1", "g2"], ["g3"], ["g5"], ["g6", "g7"]]


def test_every_grid_with_residents_is_in_exactly_one_unit() -> None:
    counts = [(f"g{i}", (i * 37) % 120) for i in range(500)]
    units = cut(counts, 1000)
    flat = [g for unit in units for g in unit]
    assert flat == [g for g, n in counts if n > 0]
    assert all(sum(dict(counts)[g] for g in unit) <= 1000 for unit in units)


def test_a_unit_round_trips_and_a_bad_record_is_refused_with_what_is_wrong() -> None:
    unit = FanoutUnit("a-1", 3, Tier.red, 1e9, True, ("440305000001", "440305000002"), 1, 4)
    assert FanoutUnit.from_bytes(unit.to_bytes()) == unit
    assert unit.key == "a-1.v3.u1"
    with pytest.raises(ValueError, match="bad fan-out unit: JSONDecodeError"):
        FanoutUnit.from_bytes(b"{not json")
    with pytest.raises(ValueError, match="KeyError: 'grids'"):
        FanoutUnit.from_bytes(b'{"alert_id": "a", "version": 1, "tier": "red", "expires": 1, "opted_in_only": false}')
    with pytest.raises(ValueError, match="'purple' is not a valid Tier"):
        FanoutUnit.from_bytes(unit.to_bytes().replace(b'"red"', b'"purple"'))
    with pytest.raises(ValueError, match="unit 4 of 4, 2 grids"):
        FanoutUnit.from_bytes(unit.to_bytes().replace(b'"index":1', b'"index":4'))
