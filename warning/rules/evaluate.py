"""Pure rule evaluation over per-station, event-time window state.

State is a plain JSON-able dict so a Faust table can hold it::

    {"readings": {kind: [[epoch_s, value], ...]},   # sorted, one entry per observed_at
     "emitted":  {rule_id: [tier, epoch_s]}}        # last signal sent per rule

A reading is counted once (same station + kind + observed_at replaces, never adds);
readings arriving out of order within ``allowed_lateness_s`` of the station's newest
reading land in the right window; older ones are refused with a reason.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from warning.models import WARNING_TIERS, Observation, Tier, TierSignal
from warning.rules.pack import Rule, RulePack

StationState = dict[str, Any]


@dataclass(frozen=True)
class EvalConfig:
    allowed_lateness_s: float = 3600.0
    refresh_s: float = 600.0  # re-send an unchanged non-none tier this often (event time)


@dataclass
class BatchResult:
    signals: list[TierSignal] = field(default_factory=list)
    late: list[tuple[Observation, str]] = field(default_factory=list)


def aggregate(rule_aggregation: str, readings: list[list[float]], now: float, window_s: float) -> float | None:
    """Aggregate the values with observed_at in (now - window_s, now]."""
    if rule_aggregation == "latest":
        return readings[-1][1] if readings else None
    times = [r[0] for r in readings]
    lo = bisect.bisect_right(times, now - window_s)
    hi = bisect.bisect_right(times, now)
    values = [r[1] for r in readings[lo:hi]]
    if not values:
        return None
    if rule_aggregation == "sum":
        return sum(values)
    if rule_aggregation == "max":
        return max(values)
    return sum(values) / len(values)


def rule_tier(rule: Rule, readings: list[list[float]], now: float) -> tuple[Tier, float | None]:
    """The loudest tier whose threshold is met at ``now`` (>= threshold meets it)."""
    for tier in WARNING_TIERS:
        spec = rule.tiers.get(tier)
        if spec is None:
            continue
        value = aggregate(rule.aggregation, readings, now, spec.window_s)
        # Round away float noise so 49.99999999 from summing 0.1s still reads as 50.
        if value is not None and round(value, 9) >= spec.threshold:
            return tier, value
    return Tier.none, None


def _insert(readings: list[list[float]], ts: float, value: float) -> None:
    times = [r[0] for r in readings]
    i = bisect.bisect_left(times, ts)
    if i < len(readings) and readings[i][0] == ts:
        readings[i][1] = value  # the same reading delivered again: counted once
    else:
        readings.insert(i, [ts, value])


def evaluate_station(
    pack: RulePack,
    state: StationState,
    observations: Iterable[Observation],
    area_of: Callable[[Observation], str],
    config: EvalConfig = EvalConfig(),
) -> BatchResult:
    """Fold one station's readings into its state and return the tier signals to send.

    Mutates ``state`` in place (the caller writes it back to its table once per batch).
    """
    result = BatchResult()
    readings_by_kind: dict[str, list[list[float]]] = state.setdefault("readings", {})
    emitted: dict[str, list[Any]] = state.setdefault("emitted", {})
    for obs in observations:
        rules = pack.for_kind(obs.kind)
        if not rules:
            continue  # a kind no rule watches is fine, just not interesting
        ts = obs.observed_at.timestamp()
        readings = readings_by_kind.setdefault(obs.kind, [])
        newest = readings[-1][0] if readings else ts
        if ts < newest - config.allowed_lateness_s:
            result.late.append((obs, f"reading is {newest - ts:.0f}s older than the station's newest; "
                                     f"allowed lateness is {config.allowed_lateness_s:.0f}s"))
            continue
        _insert(readings, ts, obs.value)
        now = readings[-1][0]
        retention = max(rule.retention_s for rule in rules) + config.allowed_lateness_s
        while readings and readings[0][0] <= now - retention:
            readings.pop(0)
        for rule in rules:
            tier, value = rule_tier(rule, readings, now)
            last_tier, last_at = emitted.get(rule.id, [Tier.none.value, 0.0])
            changed = tier.value != last_tier
            stale = tier is not Tier.none and now - last_at >= config.refresh_s
            if changed or stale:
                emitted[rule.id] = [tier.value, now]
                result.signals.append(TierSignal(
                    hazard=rule.hazard, area=area_of(obs), station_id=obs.station_id, tier=tier,
                    at=datetime.fromtimestamp(now, UTC), value=value, rule_id=rule.id))
    return result
