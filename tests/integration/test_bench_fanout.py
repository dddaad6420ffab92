"""`warning bench fanout` end to end at a small size: the drain it waits for is the residents'
push jobs, so a red alert that also queues the area's cell broadcasts (which no consumer
of the scenario drains) still finishes — it waited out its 10 minutes and failed before."""

from __future__ import annotations

import pytest

from warning.config import Settings


def test_the_fanout_scenario_drains_every_resident_and_reports_it(settings: Settings,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from warning.bench import fanout

    monkeypatch.setattr(fanout, "RESIDENTS", 300)
    result = fanout.scenario(settings, 0)
    assert (result["residents"], result["import_errors"]) == (300, 0)
    assert result["enqueued"] > 300  # every resident's push, and the area's cell broadcasts: the case that hung
    assert result["drain_per_s"] > 0 and result["handoff_p99_s"] > 0
