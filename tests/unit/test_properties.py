"""Properties of evaluation and lifecycle over generated rainfall series, and of enqueue batching."""

from __future__ import annotations

from copy import deepcopy
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.helpers import T0, obs
from warning.delivery.batches import FIRST_BATCH, ramp
from warning.lifecycle import LifecycleConfig, step, tick_due
from warning.models import Observation, Tier, TierSignal
from warning.rules.evaluate import EvalConfig, evaluate_station, rule_tier
from warning.rules.pack import load_pack

PACK = load_pack()
RAIN = next(r for r in PACK.rules if r.id == "rainstorm")
CONFIG = EvalConfig(allowed_lateness_s=13 * 3600, refresh_s=1e9)  # nothing in a 12 h span is late

readings = st.dictionaries(st.integers(0, 720), st.floats(0, 60).map(lambda v: round(v, 1)),
                           min_size=1, max_size=30).map(lambda d: [obs(value=v, minutes=m) for m, v in d.items()])


def feed(series: list[Observation]) -> tuple[Tier, dict[str, object], list[tuple[Tier, datetime]]]:
    state: dict[str, object] = {}
    signals = []
    for reading in series:
        signals += [(s.tier, s.at) for s in evaluate_station(PACK, state, [reading], lambda o: "A", CONFIG).signals]
    rain = state["readings"]["rainfall"]  # type: ignore[index]
    return rule_tier(RAIN, rain, rain[0][-1])[0], state, signals


@given(readings, st.integers(0, 720), st.floats(0.1, 60).map(lambda v: round(v, 1)))
def test_adding_rain_never_lowers_the_tier(series: list[Observation], minute: int, extra: float) -> None:
    latest = max(r.observed_at for r in series)
    at = min(T0 + timedelta(minutes=minute), latest)
    if any(r.observed_at == at for r in series):
        return  # the same observed_at replaces a reading rather than adding rain
    before, _, _ = feed(series)
    after, _, _ = feed([*series, obs(value=extra, minutes=(at - T0).total_seconds() / 60)])
    assert after.rank >= before.rank


@given(readings, st.data())
def test_duplicate_readings_never_change_the_result(series: list[Observation], data: st.DataObject) -> None:
    copies = data.draw(st.lists(st.sampled_from(series), max_size=10))
    with_dupes = list(series)
    for copy in copies:  # each duplicate arrives somewhere after its original
        index = with_dupes.index(copy)
        with_dupes.insert(data.draw(st.integers(index + 1, len(with_dupes))), copy)
    assert feed(with_dupes) == feed(series)


@given(readings, st.randoms(use_true_random=False))
def test_reordering_within_the_lateness_bound_never_changes_the_result(series: list[Observation], rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(series)
    rnd.shuffle(shuffled)
    tier, state, _ = feed(series)
    tier_shuffled, state_shuffled, _ = feed(shuffled)
    assert tier_shuffled == tier and state_shuffled["readings"] == state["readings"]


signals = st.lists(st.tuples(st.sampled_from(["S1", "S2", "S3"]), st.sampled_from(list(Tier)), st.integers(1, 600)),
                   min_size=1, max_size=40)


@settings(max_examples=200)
@given(signals)
def test_lifecycle_versions_are_consecutive_and_reference_earlier_ones(events: list[tuple[str, Tier, int]]) -> None:
    state: dict[str, object] = {}
    now = T0.timestamp()
    chains: dict[str, list[str]] = {}
    config = LifecycleConfig(ttl_s=6 * 3600, downgrade_hold_s=300)
    for station, tier, gap in events:
        now += gap
        signal = TierSignal(hazard="rainstorm", area="A", station_id=station, tier=tier,
                            at=datetime.fromtimestamp(now, UTC), rule_id="rainstorm")
        version = step(state, signal, now, config)
        # The alert tier is never below a station's current tier: upgrades are immediate.
        loudest = Tier.highest([Tier(t) for t, _ in state["stations"].values()])  # type: ignore[attr-defined]
        assert Tier(state["tier"]).rank >= loudest.rank  # type: ignore[arg-type]
        if version is None:
            continue
        chain = chains.setdefault(version.alert_id, [])
        assert version.version == len(chain) + 1
        assert [r.identifier for r in version.references] == chain
        assert (version.msg_type == "Alert") == (version.version == 1)
        assert (version.msg_type == "Cancel") == (version.tier is Tier.none)
        chain.append(version.identifier)



@settings(max_examples=200)
@given(signals, st.data())
def test_replaying_applied_signals_changes_nothing(events: list[tuple[str, Tier, int]], data: st.DataObject) -> None:
    """A worker that crashes before its window flush replays readings, and evaluate sends
    their signals again, after the lifecycle applied them: any of them, in any order."""
    config = LifecycleConfig(ttl_s=6 * 3600, downgrade_hold_s=300)
    state: dict[str, object] = {}
    now = T0.timestamp()
    applied = []
    for station, tier, gap in events:
        now += gap
        applied.append((TierSignal(hazard="rainstorm", area="A", station_id=station, tier=tier,
                                   at=datetime.fromtimestamp(now, UTC), rule_id="rainstorm"), now))
        step(state, *applied[-1], config)
    before = deepcopy(state)
    for signal, at in data.draw(st.lists(st.sampled_from(applied), max_size=20)):
        assert step(state, signal, at, config) is None
    assert state == before

@settings(max_examples=200)
@given(signals, st.floats(0, 1))
def test_a_tick_changes_an_alert_at_its_due_time_and_not_before(events: list[tuple[str, Tier, int]],
                                                               early: float) -> None:
    """Only due alerts are ticked, so a tick before ``tick_due`` must be a no-op and one at
    it must not be (or an expiry or a held downgrade would wait for the next signal)."""
    config = LifecycleConfig(ttl_s=1800, downgrade_hold_s=300)
    state: dict[str, object] = {}
    now = T0.timestamp()
    for station, tier, gap in events:
        now += gap
        step(state, TierSignal(hazard="rainstorm", area="A", station_id=station, tier=tier,
                               at=datetime.fromtimestamp(now, UTC), rule_id="rainstorm"), now, config)
    due = tick_due(state, config)
    if due is None:
        assert not state.get("alert_id")
        return
    assert due >= now
    before = deepcopy(state)
    assert step(state, None, now + (due - now) * early * 0.999, config) is None
    assert state == before
    version = step(state, None, due, config)
    assert version is not None or state != before


@given(st.integers(0, 50_000), st.integers(1, 5_000))
def test_enqueue_batches_cover_every_job_once_starting_small(total: int, batch: int) -> None:
    bounds = list(ramp(total, batch))
    assert [i for start, end in bounds for i in range(start, end)] == list(range(total))
    sizes = [end - start for start, end in bounds]
    assert all(0 < size <= batch for size in sizes)
    if sizes:
        assert sizes[0] == min(FIRST_BATCH, batch, total)
        assert sizes[:-1] == sorted(sizes[:-1])  # growing: only the last may be a remainder
