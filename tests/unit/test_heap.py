"""The collector settings of the long-running processes (warning/heap.py)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from warning import heap
from warning.config import ConfigError, load_settings


@pytest.fixture
def restored_collector() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_settle_freezes_the_started_heap_and_sets_the_young_threshold(restored_collector: None) -> None:
    _, older, oldest = gc.get_threshold()
    heap.settle(20_000)
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (20_000, older, oldest)


def test_a_reference_cycle_is_still_collected_at_the_next_young_collection(restored_collector: None) -> None:
    heap.settle(1_000)
    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    assert gone() is not None  # a cycle: reference counts alone never free it
    kept: list[list[int]] = [[] for _ in range(3_000)]  # allocations past the threshold: a young collection runs
    assert gone() is None and len(kept) == 3_000


def test_the_threshold_is_a_setting_with_bounds_named_when_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().gc_threshold == 20_000
    monkeypatch.setenv("WARNING_GC_THRESHOLD", "700")
    assert load_settings().gc_threshold == 700
    monkeypatch.setenv("WARNING_GC_THRESHOLD", "10")
    with pytest.raises(ConfigError, match=r"gc_threshold \(env WARNING_GC_THRESHOLD\)"):
        load_settings()
