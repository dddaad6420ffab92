from __future__ import annotations

from datetime import UTC, datetime

from warning.lifecycle import LifecycleConfig, new_alert_id, step
from warning.models import Tier, TierSignal

CONFIG = LifecycleConfig(ttl_s=3600, downgrade_hold_s=600)
T0 = datetime(2026, 7, 1, tzinfo=UTC).timestamp()


def signal(tier: Tier, at: float, station: str = "S1") -> TierSignal:
    return TierSignal(hazard="rainstorm", area="440305001", station_id=station, tier=tier,
                      at=datetime.fromtimestamp(at, UTC), value=1.0, rule_id="rainstorm")


def test_issue_upgrade_downgrade_after_hold_then_cancel() -> None:
    state: dict[str, object] = {}
    v1 = step(state, signal(Tier.yellow, T0), T0, CONFIG)
    assert v1 and (v1.tier, v1.version, v1.msg_type, v1.references) == (Tier.yellow, 1, "Alert", [])
    v2 = step(state, signal(Tier.red, T0 + 60), T0 + 60, CONFIG)
    assert v2 and (v2.tier, v2.version, v2.msg_type) == (Tier.red, 2, "Update")
    assert [r.identifier for r in v2.references] == [v1.identifier] and v2.alert_id == v1.alert_id
    assert v2.references[0].sent == v1.issued_at
    # Below red, but not for the hold time yet: no flapping.
    assert step(state, signal(Tier.blue, T0 + 120), T0 + 120, CONFIG) is None
    assert step(state, None, T0 + 120 + 599, CONFIG) is None
    v3 = step(state, None, T0 + 120 + 600, CONFIG)
    assert v3 and (v3.tier, v3.msg_type, v3.version) == (Tier.blue, "Update", 3)
    assert step(state, signal(Tier.none, T0 + 800), T0 + 800, CONFIG) is None
    v4 = step(state, None, T0 + 1400, CONFIG)
    assert v4 and (v4.tier, v4.msg_type) == (Tier.none, "Cancel")
    assert [r.identifier for r in v4.references] == [v1.identifier, v2.identifier, v3.identifier]
    assert state["tier"] == "none" and "alert_id" not in state


def test_back_above_during_hold_cancels_the_downgrade() -> None:
    state: dict[str, object] = {}
    step(state, signal(Tier.orange, T0), T0, CONFIG)
    assert step(state, signal(Tier.blue, T0 + 10), T0 + 10, CONFIG) is None
    assert step(state, signal(Tier.orange, T0 + 20), T0 + 20, CONFIG) is None
    assert step(state, None, T0 + 700, CONFIG) is None  # hold restarted: nothing to downgrade


def test_area_tier_is_the_loudest_station() -> None:
    state: dict[str, object] = {}
    step(state, signal(Tier.red, T0, "S1"), T0, CONFIG)
    assert step(state, signal(Tier.blue, T0 + 10, "S2"), T0 + 10, CONFIG) is None
    assert step(state, None, T0 + 1000, CONFIG) is None  # S1 still red: no downgrade
    assert state["tier"] == "red"
    downgrade = step(state, signal(Tier.none, T0 + 1010, "S1"), T0 + 1010, CONFIG)
    assert downgrade is None  # hold starts now
    later = step(state, None, T0 + 1610, CONFIG)
    assert later and later.tier == Tier.blue  # S2's blue is what is left


def test_expiry_ends_the_alert_without_a_message_and_a_new_crossing_issues_a_new_alert() -> None:
    state: dict[str, object] = {}
    first = step(state, signal(Tier.yellow, T0), T0, CONFIG)
    assert step(state, None, T0 + 3600, CONFIG) is None
    assert state["tier"] == "none"
    again = step(state, signal(Tier.yellow, T0 + 3700), T0 + 3700, CONFIG)
    assert first and again and again.alert_id != first.alert_id and again.msg_type == "Alert"


def test_alert_id_is_deterministic_and_safe() -> None:
    assert new_alert_id("gas", "station:X/1", T0) == new_alert_id("gas", "station:X/1", T0)
    assert new_alert_id("gas", "station:X/1", T0) == "gas-station_X_1-20260701T000000Z"


def test_a_replayed_older_signal_changes_nothing() -> None:
    """After a crash evaluate re-derives signals the lifecycle has already applied: an old
    red arriving after the downgrade it preceded must not re-issue red."""
    state: dict[str, object] = {}
    red, blue = signal(Tier.red, T0), signal(Tier.blue, T0 + 120)
    assert step(state, red, T0, CONFIG) is not None
    assert step(state, blue, T0 + 120, CONFIG) is None
    downgraded = step(state, None, T0 + 720, CONFIG)
    assert downgraded and (downgraded.tier, downgraded.version) == (Tier.blue, 2)
    before = repr(state)
    assert step(state, red, T0, CONFIG) is None
    assert step(state, blue, T0 + 120, CONFIG) is None  # the same signal again: nothing new either
    assert repr(state) == before
    newer = step(state, signal(Tier.red, T0 + 800), T0 + 800, CONFIG)
    assert newer and (newer.tier, newer.version) == (Tier.red, 3)  # a genuinely newer one still counts


def test_a_replayed_signal_older_than_its_withdrawal_changes_nothing() -> None:
    state: dict[str, object] = {}
    issued = signal(Tier.orange, T0, "cap:chain-1")
    withdrawn = signal(Tier.none, T0 + 60, "cap:chain-1").model_copy(update={"final": True})
    assert step(state, issued, T0, CONFIG) is not None
    cancel = step(state, withdrawn, T0 + 60, CONFIG)
    assert cancel and cancel.msg_type == "Cancel"
    assert step(state, issued, T0, CONFIG) is None
    assert state["tier"] == "none" and "alert_id" not in state
    # The tombstone lasts as long as a silent station would count, then goes.
    step(state, None, T0 + 60 + CONFIG.ttl_s, CONFIG)
    assert state["withdrawn"] == {}
