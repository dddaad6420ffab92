"""Alert lifecycle per hazard + area, as a pure state machine.

issue -> upgrade (at once) -> downgrade (only after ``downgrade_hold_s`` below the lower
tier, so a value hovering at a threshold does not flap) -> cancel -> expire. Each change
is a new version with CAP msgType Alert / Update / Cancel and references to the earlier
versions. Time is event time (the readings' observed_at), so a replay gives the same
answer as the live run.

State is a JSON-able dict kept in a Faust table keyed by the alert key::

    {"hazard", "area", "stations": {"station#rule": [tier, epoch_s]}, "withdrawn": {source: epoch_s},
     "alert_id", "tier", "version", "identifiers", "expires", "below_since",
     "source", "drill", "edits", "pinned", "reissue", ...}

Officers' changes live beside it (warning/control/): ``edits`` (texts, areas, expiry an
officer set, carried by every later version), ``pinned`` (a tier an officer set: readings
may raise it, not lower it) and ``reissue`` (after a cancel by hand, the readings that may
issue again: only a higher tier, until a time).

A source's signals apply in event-time order only: one older than the last applied for
its source (or its withdrawal), or that same signal again, is a replay and changes
nothing. Evaluate re-derives a partition's signals after a crash, which the lifecycle has
usually applied already; applied again after newer ones, an old red would re-issue a red
that had been downgraded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from warning.control.policy import AUTO, ReleasePolicy
from warning.control.release import gate, hold_due
from warning.models import AlertVersion, MsgType, Reference, Tier, TierSignal, alert_key

LifecycleState = dict[str, Any]
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class LifecycleConfig:
    ttl_s: float = 6 * 3600.0  # each version expires this long after it was caused
    downgrade_hold_s: float = 1800.0
    policy: ReleasePolicy = AUTO  # which audience segments wait for a second person
    # Tiers whose audience has residents (the directory's policy): only there can they be held
    resident_tiers: frozenset[Tier] = frozenset({Tier.yellow, Tier.orange, Tier.red})


def _ts(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def new_alert_id(hazard: str, area: str, at: float) -> str:
    """Deterministic, so replaying a partition re-derives the same id (idempotent fan-out)."""
    stamp = _ts(at).strftime("%Y%m%dT%H%M%SZ")
    return _UNSAFE.sub("_", f"{hazard}-{area}-{stamp}")


def is_active(state: LifecycleState) -> bool:
    return bool(state.get("alert_id"))


def tick_due(state: LifecycleState, config: LifecycleConfig = LifecycleConfig()) -> float | None:
    """When time alone first changes an active alert (event time), or None if it is not active.

    The earliest of: its expiry, a station falling silent for ``ttl_s``, the end of a
    held downgrade. A tick before then changes nothing, so only due alerts are ticked
    (every active alert every 10 s was thousands of no-op records in a storm).
    """
    if not is_active(state):
        return None
    due = [float(state["expires"])]
    due += [float(at) + config.ttl_s for _, at in state.get("stations", {}).values()]
    if state.get("below_since") is not None:
        due.append(float(state["below_since"]) + config.downgrade_hold_s)
    if (held := hold_due(state)) is not None:
        due.append(held)
    return min(due)


def step(
    state: LifecycleState,
    signal: TierSignal | None,
    now: float,
    config: LifecycleConfig = LifecycleConfig(),
    wall: datetime | None = None,
) -> AlertVersion | None:
    """Apply one signal (or a tick when ``signal`` is None) at event time ``now``.

    Mutates ``state``; returns the new alert version when the alert changed.
    """
    if signal is not None and _replayed(state, signal, now):
        return None
    if signal is not None:
        state.setdefault("hazard", signal.hazard)
        state.setdefault("area", signal.area)
        state.setdefault("source", signal.source_kind)
        state.setdefault("drill", signal.drill)
        if signal.polygons or signal.circles:  # a CAP warning's own shape travels with the alert
            state["polygons"], state["circles"] = signal.polygons, signal.circles
        if signal.final:
            state.setdefault("stations", {}).pop(signal.source, None)
            state.setdefault("withdrawn", {})[signal.source] = now
        else:
            state.setdefault("stations", {})[signal.source] = [signal.tier.value, now]
    state.setdefault("tier", Tier.none.value)
    stations: dict[str, list[Any]] = state.setdefault("stations", {})
    for station_id, (_, at) in list(stations.items()):
        if now - at >= config.ttl_s:
            del stations[station_id]  # a station silent this long no longer counts
    gone: dict[str, float] = state.get("withdrawn", {})
    for source, at in list(gone.items()):
        if now - at >= config.ttl_s:
            del gone[source]  # its replays are long over
    area_tier = Tier.highest([Tier(tier) for tier, _ in stations.values()])

    if is_active(state) and now >= state["expires"]:
        clear(state)  # expired: the last version's `expires` already told everyone
    area_tier = _as_officers_left_it(state, area_tier, now)
    current = Tier(state.get("tier", Tier.none.value))

    if area_tier.rank > current.rank:
        state["below_since"] = None
        return _new_version(state, area_tier, now, config, wall, cause=signal)
    if area_tier.rank == current.rank:
        state["below_since"] = None
        return None
    below_since = state.get("below_since")
    if below_since is None:
        state["below_since"] = below_since = now
    withdrawn = signal is not None and signal.final  # the issuer said so: no waiting
    if now - below_since < config.downgrade_hold_s and not withdrawn:
        return None
    state["below_since"] = None
    version = _new_version(state, area_tier, now, config, wall, cause=signal)
    if area_tier is Tier.none:
        clear(state)
    return version


def _replayed(state: LifecycleState, signal: TierSignal, at: float) -> bool:
    """Whether a signal is older than the last one applied for its source (or its withdrawal),
    or that same signal again."""
    applied = state.get("stations", {}).get(signal.source)
    if applied:
        return bool(at < applied[1] or (at == applied[1] and signal.tier.value == applied[0]))
    withdrawn = state.get("withdrawn", {}).get(signal.source)
    return withdrawn is not None and at <= withdrawn


def _as_officers_left_it(state: LifecycleState, area_tier: Tier, now: float) -> Tier:
    """The readings' tier after an officer's pin (a floor while active) and a cancel's
    re-issue guard (below or at the cancelled tier, nothing issues until it ends)."""
    pinned = state.get("pinned")
    if pinned and is_active(state):
        if area_tier.rank > Tier(pinned).rank:
            state.pop("pinned")  # the readings went above what the officer set: they lead again
        else:
            return Tier(pinned)
    guard = state.get("reissue")
    if guard and not is_active(state):
        if now >= guard["until"] or area_tier.rank > Tier(guard["tier"]).rank:
            state.pop("reissue")
        else:
            return Tier.none
    return area_tier


def clear(state: LifecycleState) -> None:
    """The alert is over (cancelled or expired): what is kept is the sources' last signals."""
    for field in ("alert_id", "version", "identifiers", "expires", "below_since", "pinned", "edits", "released",
                  "pending"):
        state.pop(field, None)
    state["tier"] = Tier.none.value





def _new_version(
    state: LifecycleState,
    tier: Tier,
    now: float,
    config: LifecycleConfig,
    wall: datetime | None,
    cause: TierSignal | None,
) -> AlertVersion:
    hazard, area = state["hazard"], state["area"]
    msg_type: MsgType
    if not is_active(state):
        prefix = "drill-" if state.get("drill") else ""
        state["alert_id"] = prefix + new_alert_id(hazard, area, now)
        state["version"] = 1
        state["identifiers"] = []
        msg_type = "Alert"
    else:
        state["version"] += 1
        msg_type = "Cancel" if tier is Tier.none else "Update"
    expires = now + config.ttl_s
    if cause is not None and cause.expires is not None:
        expires = cause.expires.timestamp()  # a bureau's CAP says how long its warning lasts
    return versioned(state, tier, msg_type, now, expires, wall, _describe(cause), config)


def versioned(state: LifecycleState, tier: Tier, msg_type: MsgType, now: float, expires: float,
              wall: datetime | None, cause: str, config: LifecycleConfig) -> AlertVersion:
    """The next version of the state's alert (its number already advanced), with what
    officers set by hand carried along and the release policy applied; the state remembers it."""
    edits: dict[str, Any] = state.get("edits") or {}
    references = [Reference(identifier=i, sent=datetime.fromisoformat(s)) for i, s in state["identifiers"]]
    key = alert_key(state["hazard"], state["area"])
    alert = AlertVersion(
        alert_id=state["alert_id"], key=state.get("key") or (f"drill:{key}" if state.get("drill") else key),
        hazard=state["hazard"], area=state["area"], tier=tier, version=state["version"], msg_type=msg_type,
        references=references, caused_at=_ts(now), issued_at=wall or datetime.now(UTC),
        expires=_ts(edits.get("expires", expires)), cause=edits.get("cause", cause),
        polygons=edits.get("polygons") or state.get("polygons") or [],
        circles=edits.get("circles") or state.get("circles") or [],
        source=state.get("source", "rule"), areas=edits.get("areas", []), texts=edits.get("texts", {}),
        audience=edits.get("audience"), drill=bool(state.get("drill")), author=edits.get("author", ""),
    )
    state["identifiers"].append([alert.identifier, alert.issued_at.isoformat()])
    state["tier"] = tier.value
    state["expires"] = alert.expires.timestamp()
    return gate(state, alert, config.policy, config.resident_tiers)


def _describe(signal: TierSignal | None) -> str:
    if signal is None:
        return "condition held below the previous tier for the hold time"
    if signal.rule_id == "cap":
        return f"CAP {signal.station_id.removeprefix('cap:')} ({signal.tier.value})"
    value = f"{signal.value:g}" if signal.value is not None else "n/a"
    return f"station {signal.station_id}: {signal.rule_id} = {value} ({signal.tier.value})"
