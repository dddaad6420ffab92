"""Officers' commands on the lifecycle (pure): the release policy, two-person rule,
approvals, cancels with their re-issue guard, idempotent retries, drills and silences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from warning.control.commands import Actor, Command, apply_command, hold_timed_out
from warning.control.policy import ReleasePolicyError, load_policy
from warning.control.release import corroborated_release
from warning.control.silences import Matchers, Silence
from warning.lifecycle import LifecycleConfig, step, tick_due
from warning.models import AlertVersion, Tier, TierSignal
from warning.targeting.audience import narrowed
from warning.targeting.directory import Audience
from warning.targeting.message import render_text

POLICY = load_policy()
CONFIG = LifecycleConfig(ttl_s=3600, downgrade_hold_s=600, policy=POLICY)
T0 = datetime(2026, 7, 1, 2, 0, tzinfo=UTC).timestamp()
OFF_A = Actor(id="off-a", role="officer", level="township", area="440305001")
OFF_B = Actor(id="off-b", role="officer", level="district", area="440305")
LEVELS = ["township", "district", "city"]


def gas(tier: Tier, at: float, station: str = "GAS-1") -> TierSignal:
    return TierSignal(hazard="gas", area="440305001", station_id=station, tier=tier,
                      at=datetime.fromtimestamp(at, UTC), value=60.0, rule_id="gas")


def command(op: str, actor: Actor, at: float = T0, cid: str | None = None, **body: Any) -> Command:
    return Command(command_id=cid or f"{op}-{actor.id}-{at}", op=op, alert_key="manual:m-1", alert_id="m-1",  # type: ignore[arg-type]
                   actor=actor, at=at, body=body)


def issue(state: dict[str, Any], **extra: Any) -> AlertVersion:
    body = {"hazard": "rainstorm", "tier": "orange", "areas": ["440305001"], "expires": T0 + 3600,
            "texts": {"zh-CN": {"headline": "南头街道暴雨橙色预警", "instruction": "停止户外活动。"},
                      "en": {"headline": "Orange rainstorm warning for Nantou"}}, **extra}
    applied = apply_command(state, command("issue", OFF_A, **body), CONFIG)
    assert applied.outcome.status == 201, applied.outcome
    return applied.versions[0]


def test_a_hand_made_alert_goes_to_staff_at_once_and_waits_for_a_second_officer_for_residents() -> None:
    state: dict[str, Any] = {}
    v1 = issue(state)
    assert (v1.alert_id, v1.version, v1.msg_type, v1.tier, v1.source) == ("m-1", 1, "Alert", Tier.orange, "manual")
    assert v1.release == ["staff"] and v1.author == "off-a"
    assert state["pending"]["segments"] == ["residents"] and state["pending"]["author"] == "off-a"

    own = apply_command(state, command("approve", OFF_A, T0 + 5), CONFIG)
    assert own.outcome.status == 403 and "two-person rule" in own.outcome.body["detail"] and not own.versions
    assert own.audit[0]["event"] == "approve_refused" and own.audit[0]["by"] == "off-a"

    approved = apply_command(state, command("approve", OFF_B, T0 + 10), CONFIG)
    assert approved.outcome.status == 200 and approved.outcome.body["status"] == "released"
    [released] = approved.versions
    assert (released.version, released.release) == (1, ["staff", "residents"])  # the same version, to everyone
    assert "pending" not in state and approved.audit[0]["event"] == "approve"

    again = apply_command(state, command("approve", OFF_B, T0 + 20), CONFIG)
    assert again.outcome.status == 409 and "already released" in again.outcome.body["detail"]


def test_a_retried_command_gets_the_first_answer_and_changes_nothing() -> None:
    state: dict[str, Any] = {}
    issue(state)
    first = apply_command(state, command("approve", OFF_B, T0 + 10, cid="same"), CONFIG)
    retry = apply_command(state, command("approve", OFF_B, T0 + 11, cid="same"), CONFIG)
    assert (retry.outcome.status, retry.outcome.body) == (first.outcome.status, first.outcome.body)
    assert retry.versions == [] and retry.audit == []


def test_two_approvals_at_once_release_once() -> None:
    state: dict[str, Any] = {}
    issue(state)
    b = apply_command(state, command("approve", OFF_B, T0 + 10), CONFIG)
    c = apply_command(state, command("approve", OFF_B.model_copy(update={"id": "off-c"}), T0 + 10), CONFIG)
    assert [b.outcome.status, c.outcome.status] == [200, 409]
    assert len(b.versions) == 1 and c.versions == []


def test_approve_with_edits_is_a_new_draft_that_someone_else_approves() -> None:
    state: dict[str, Any] = {}
    issue(state)
    edited = apply_command(state, command("approve", OFF_B, T0 + 10, edits={"tier": "red"}), CONFIG)
    [v2] = edited.versions
    assert (v2.version, v2.tier, v2.release, v2.author) == (2, Tier.red, ["staff"], "off-b")
    assert state["pending"]["author"] == "off-b"
    assert apply_command(state, command("approve", OFF_B, T0 + 20), CONFIG).outcome.status == 403
    done = apply_command(state, command("approve", OFF_A, T0 + 30), CONFIG)  # the first author may now approve
    assert done.outcome.status == 200 and done.versions[0].release == ["staff", "residents"]


def test_a_rejected_draft_keeps_residents_untold() -> None:
    state: dict[str, Any] = {}
    issue(state)
    rejected = apply_command(state, command("reject", OFF_B, T0 + 10, reason="wrong area"), CONFIG)
    assert rejected.outcome.body["status"] == "rejected" and rejected.audit[0]["reason"] == "wrong area"
    assert "pending" not in state and state["released"] == ["staff"]
    v2 = apply_command(state, command("update", OFF_A, T0 + 20, tier="red"), CONFIG).versions[0]
    assert v2.release == ["staff"]  # a new version of it waits again
    assert state["pending"]["version"] == 2


def test_one_station_is_held_for_residents_and_a_second_agreeing_one_releases_them() -> None:
    state: dict[str, Any] = {}
    assert (v0 := step(state, gas(Tier.blue, T0), T0, CONFIG)) and v0.release == ["staff", "residents"]
    assert "pending" not in state and state["released"] == ["staff"]  # blue has no residents to hold
    v1 = step(state, gas(Tier.red, T0 + 1), T0 + 1, CONFIG)
    assert v1 and v1.tier is Tier.red and v1.release == ["staff"]
    assert state["pending"]["segments"] == ["residents"] and state["pending"]["author"] == "rule"
    assert corroborated_release(state, POLICY) is None  # one station
    assert step(state, gas(Tier.orange, T0 + 2, station="GAS-2"), T0 + 2, CONFIG) is None
    assert corroborated_release(state, POLICY) is None  # the second station is not at red
    assert step(state, gas(Tier.red, T0 + 3, station="GAS-2"), T0 + 3, CONFIG) is None  # same tier: no version
    released = corroborated_release(state, POLICY)
    assert released and (released.version, released.release) == (v1.version, ["staff", "residents"])
    assert "pending" not in state


def test_orange_from_two_agreeing_stations_goes_to_everyone_at_once() -> None:
    state: dict[str, Any] = {}
    step(state, gas(Tier.yellow, T0, station="GAS-1"), T0, CONFIG)
    step(state, gas(Tier.orange, T0 + 1, station="GAS-2"), T0 + 1, CONFIG)  # orange, one station: held
    assert state["pending"]["version"] == 2
    v3 = step(state, gas(Tier.red, T0 + 2, station="GAS-1"), T0 + 2, CONFIG)
    assert v3 and v3.release == ["staff"]  # red from GAS-1 alone
    corroborated = {"stations": {"GAS-1#gas": ["red", T0], "GAS-2#gas": ["red", T0]}}
    assert POLICY.held("rule", "gas", Tier.red, True) == [] and POLICY.held("rule", "gas", Tier.red, False) == [
        "residents"]
    from warning.control.release import corroborating

    assert corroborating(corroborated, Tier.red) == 2 and corroborating(corroborated, Tier.none) == 0


def test_a_hold_that_times_out_releases_red_and_escalates_yellow() -> None:
    state: dict[str, Any] = {}
    step(state, gas(Tier.red, T0), T0, CONFIG, wall=datetime.fromtimestamp(T0, UTC))
    hold = state["pending"]["hold_until"]
    assert hold == T0 + 300 and tick_due(state, CONFIG) == hold  # holds run on the wall clock
    assert hold_timed_out(state, hold - 1, CONFIG, LEVELS) == (None, None)
    version, event = hold_timed_out(state, hold, CONFIG, LEVELS)
    assert version is not None and version.release == ["staff", "residents"] and event
    assert event["action"] == "released"
    yellow: dict[str, Any] = {}
    step(yellow, gas(Tier.yellow, T0), T0, CONFIG)
    hold = yellow["pending"]["hold_until"]
    asked = yellow["pending"]
    version, event = hold_timed_out(yellow, hold, CONFIG, LEVELS)
    assert version is None and event and (event["action"], event["level"]) == ("escalated", "district")
    assert yellow["pending"]["hold_until"] == hold + 1800 and yellow["pending"]["level"] == 1
    assert asked["level"] == 0 and yellow["pending"] != asked  # a changed approval: re-indexed, approvers told


def test_cancel_by_hand_any_alert_and_the_next_reading_does_not_reissue_it() -> None:
    state: dict[str, Any] = {}
    step(state, gas(Tier.red, T0), T0, CONFIG)
    cancel = Command(command_id="c1", op="cancel", alert_key="gas:440305001", alert_id=state["alert_id"],
                     actor=OFF_A, at=T0 + 60, body={"reason": "sensor fault", "allow_reissue": "higher_tier"})
    applied = apply_command(state, cancel, CONFIG)
    [v2] = applied.versions
    assert (v2.msg_type, v2.tier, v2.release) == ("Cancel", Tier.none, ["staff"])  # residents never got it
    assert "sensor fault" in v2.cause and applied.outcome.body["status"] == "cancelled"
    assert "pending" not in state and "alert_id" not in state
    assert step(state, gas(Tier.red, T0 + 700), T0 + 700, CONFIG) is None  # not above the cancelled tier
    assert step(state, None, T0 + 710, CONFIG) is None
    assert apply_command(state, cancel.model_copy(update={"command_id": "c2"}), CONFIG).outcome.status == 409


def test_cancel_allowing_any_reissue_lets_the_next_reading_issue() -> None:
    state: dict[str, Any] = {}
    step(state, gas(Tier.red, T0), T0, CONFIG)
    cancel = Command(command_id="c1", op="cancel", alert_key="gas:440305001", alert_id=state["alert_id"],
                     actor=OFF_A, at=T0 + 60, body={"reason": "test", "allow_reissue": "any"})
    apply_command(state, cancel, CONFIG)
    assert step(state, None, T0 + 70, CONFIG) is None  # stations were set quiet: a tick issues nothing
    again = step(state, gas(Tier.red, T0 + 80), T0 + 80, CONFIG)
    assert again and again.msg_type == "Alert" and again.alert_id != cancel.alert_id


def test_a_patch_pins_the_tier_readings_may_raise_not_lower() -> None:
    state: dict[str, Any] = {}
    step(state, gas(Tier.yellow, T0), T0, CONFIG)
    upd = Command(command_id="u1", op="update", alert_key="gas:440305001", alert_id=state["alert_id"],
                  actor=OFF_A, at=T0 + 10, body={"tier": "orange"})
    [v2] = apply_command(state, upd, CONFIG).versions
    assert (v2.tier, v2.msg_type, v2.author) == (Tier.orange, "Update", "off-a")
    assert step(state, gas(Tier.blue, T0 + 20), T0 + 20, CONFIG) is None
    assert step(state, None, T0 + 20 + 700, CONFIG) is None  # no downgrade below the officer's tier
    v3 = step(state, gas(Tier.red, T0 + 800), T0 + 800, CONFIG)
    assert v3 and v3.tier is Tier.red and "pinned" not in state


def test_drills_have_their_own_alert_and_texts() -> None:
    state: dict[str, Any] = {}
    v = issue(state, drill=True)
    assert v.drill and v.key == "manual:m-1"
    zh, en = render_text(v, "zh-CN", "南头街道"), render_text(v, "en", "Nantou")
    assert zh.startswith("【演练】【橙色预警】南头街道暴雨橙色预警，有效至11:00。停止户外活动。回复1确认。编号")
    # no English instruction written: the templates' guidance for orange rainstorm
    assert en.startswith("[EXERCISE] [ORANGE warning] Orange rainstorm warning for Nantou, valid until 11:00. "
                         "Stop outdoor work; keep away from low ground. Reply 1 to confirm. Ref ")
    cap_drill = TierSignal(hazard="gas", area="440305001", station_id="cap:x", tier=Tier.red,
                           at=datetime.fromtimestamp(T0, UTC), rule_id="cap", drill=True)
    assert cap_drill.alert_key == "drill:gas:440305001"
    drill_state: dict[str, Any] = {}
    dv = step(drill_state, cap_drill, T0, CONFIG)
    assert dv and dv.drill and dv.alert_id.startswith("drill-") and dv.key == "drill:gas:440305001"


def test_times_people_read_are_in_the_city_time_zone() -> None:
    state: dict[str, Any] = {}
    v = step(state, gas(Tier.red, T0), T0, CONFIG)
    assert v and "有效至11:00" in render_text(v, "zh-CN", "南头街道")  # 03:00 UTC is 11:00 in Shenzhen
    assert "UTC" not in render_text(v, "en", "Nantou")


def test_audience_is_narrowed_to_the_released_segments_overrides_and_drills() -> None:
    everyone = Audience(officers=["township", "district"], residents="all")
    state: dict[str, Any] = {}
    v = issue(state)
    staff_only = narrowed(everyone, v, ["officer", "grid_worker"])
    assert (staff_only.residents, staff_only.officers, staff_only.grid_workers) == ("none", ["township", "district"],
                                                                                    True)
    workers = narrowed(everyone, v.model_copy(update={"audience": ["grid_worker"], "release": ["staff", "residents"]}),
                       [])
    assert (workers.residents, workers.officers, workers.grid_endpoints) == ("none", [], False)
    drill = narrowed(everyone, v.model_copy(update={"drill": True, "release": ["staff", "residents"]}),
                     ["officer", "grid_worker"])
    assert (drill.residents, drill.grid_endpoints, drill.grid_workers) == ("none", False, True)
    named = narrowed(Audience(), v.model_copy(update={"drill": True, "audience": ["resident"],
                                                      "release": ["staff", "residents"]}), ["officer"])
    assert (named.residents, named.grid_workers) == ("all", False)


def test_silence_matchers() -> None:
    now = datetime.now(UTC)
    silence = Silence(matchers=Matchers(station="GAS-1"), ends_at=now + timedelta(hours=1), comment="fault",
                      silence_id="s1", author="off-a", created_at=now.timestamp())
    assert silence.silences(gas(Tier.red, now.timestamp()), now.timestamp())
    assert not silence.silences(gas(Tier.red, now.timestamp(), station="GAS-2"), now.timestamp())
    assert not silence.silences(gas(Tier.red, now.timestamp()), (now + timedelta(hours=2)).timestamp())
    by_area = Matchers(area="440305", source="rule")
    assert by_area.match("X", "gas", "gas", "440305001", "rule") and not by_area.match("X", "gas", "gas",
                                                                                        "440305001", "cap")
    with pytest.raises(ValueError, match="at least one matcher"):
        Matchers()
    held = silence.model_copy(update={"needs_approval": True})
    assert held.status(now.timestamp()) == "pending_approval" and not held.silences(gas(Tier.red, 0), now.timestamp())


def test_a_bad_policy_fails_naming_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("rules:\n  - {segment: residents, release: sometimes}\n")
    with pytest.raises(ReleasePolicyError, match=r"policy.yaml: rules.0.release: Input should be 'auto' or"):
        load_policy(bad)
