"""How the bench folds repeated runs into one figure per key."""

from __future__ import annotations

from warning.bench.harness import summarise


def test_numeric_figures_are_medians_with_min_and_max() -> None:
    runs = [{"drain_per_s": 19_000, "note": "a"}, {"drain_per_s": 21_000, "note": "b"},
            {"drain_per_s": 20_000, "note": "c"}]
    assert summarise(runs) == {"drain_per_s": 20_000, "drain_per_s_min": 19_000, "drain_per_s_max": 21_000,
                               "note": "c"}


def test_a_figure_a_run_could_not_give_is_counted_missing_and_its_diagnostics_are_kept() -> None:
    """The chaos run whose restarted worker never dispatched: no recovery time, a stall state."""
    runs = [{"worker_recover_s": None, "stall_state": {"worker_stacks": "Thread 1 (idle)"}},
            {"worker_recover_s": 9.5, "stall_state": None},
            {"worker_recover_s": 10.5, "stall_state": None}]
    assert summarise(runs) == {"worker_recover_s": 10.0, "worker_recover_s_min": 9.5, "worker_recover_s_max": 10.5,
                               "worker_recover_s_missing": 1,
                               "stall_state": {"worker_stacks": "Thread 1 (idle)"}}


def test_a_figure_no_run_gave_stays_none() -> None:
    assert summarise([{"stall_state": None}, {"stall_state": None}]) == {"stall_state": None}
