"""The release stage (pure): after the lifecycle made a version, decide which audience
segments it goes to now, and hold the others for a second person.

The state remembers what was released (a segment approved once stays released for the
alert's later versions) and the one pending approval, which moves to each newer version::

    "released": ["staff", ...],
    "pending": {"approval_id", "version", "segments", "author", "requested_at", "hold_until",
                "level", "alert": <the held version as JSON>}
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from warning.control.policy import SEGMENTS, ReleasePolicy
from warning.models import AlertVersion, Segment, Tier

LifecycleState = dict[str, Any]
ALL_TIERS = frozenset(Tier) - {Tier.none}


def corroborating(state: LifecycleState, tier: Tier) -> int:
    """How many stations of the area are at ``tier`` or louder (a station's rules count once)."""
    return len({source.split("#", 1)[0] for source, (at_tier, _) in state.get("stations", {}).items()
                if Tier(at_tier).rank >= tier.rank > 0})


def gate(state: LifecycleState, alert: AlertVersion, policy: ReleasePolicy,
         resident_tiers: Collection[Tier] = ALL_TIERS) -> AlertVersion:
    """The version with ``release`` set; a held segment becomes (or moves) the pending approval.
    Residents are held only where the version can reach them: at tiers whose audience has
    them (``resident_tiers``), or where an officer's audience or a drill names them —
    holding nobody would only ask officers for nothing."""
    released: list[Segment] = list(state.get("released", []))
    if alert.msg_type == "Cancel":  # the all-clear goes to whoever the alert went to; nothing waits
        state.pop("pending", None)
        return alert.model_copy(update={"release": released or ["staff"]})
    has_residents = ("resident" in alert.audience if alert.audience is not None
                     else alert.tier in resident_tiers and not alert.drill)  # a drill names its residents
    held = [s for s in _held(state, alert, policy) if s not in released and (s != "residents" or has_residents)]
    release = [s for s in SEGMENTS if s not in held]
    # Residents count as told only where the tier's audience has them: a blue alert does not
    # release the residents of the orange version that may follow.
    state["released"] = [s for s in SEGMENTS if s in released or (s in release and (s != "residents" or has_residents))]
    alert = alert.model_copy(update={"release": release})
    if not held:
        state.pop("pending", None)
        return alert
    now = alert.issued_at.timestamp()
    before = state.get("pending") or {}
    state["pending"] = {
        "approval_id": alert.identifier, "version": alert.version, "segments": held,
        "author": alert.author or alert.source, "requested_at": before.get("requested_at", now),
        "hold_until": now + policy.hold_for(alert.tier), "level": before.get("level", 0),
        "alert": alert.model_dump(mode="json"),
    }
    return alert


def _held(state: LifecycleState, alert: AlertVersion, policy: ReleasePolicy) -> list[Segment]:
    corroborated = corroborating(state, alert.tier) >= policy.corroboration
    return policy.held(alert.source, alert.hazard, alert.tier, corroborated)


def corroborated_release(state: LifecycleState, policy: ReleasePolicy) -> AlertVersion | None:
    """The held version released, if enough stations now agree that the policy no longer holds it
    (a second station joining the first)."""
    pending = state.get("pending")
    if not pending or state.get("version") != pending["version"]:
        return None
    alert = AlertVersion.model_validate(pending["alert"])
    if any(s in _held(state, alert, policy) for s in pending["segments"]):
        return None
    return release_pending(state)


def release_pending(state: LifecycleState) -> AlertVersion | None:
    """The held version released to every segment (an approval, or a hold that timed out)."""
    pending = state.pop("pending", None)
    if not pending:
        return None
    state["released"] = list(SEGMENTS)
    return AlertVersion.model_validate(pending["alert"]).model_copy(update={"release": list(SEGMENTS)})


def hold_due(state: LifecycleState) -> float | None:
    pending = state.get("pending")
    return float(pending["hold_until"]) if pending else None
