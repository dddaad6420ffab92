"""Pure rule evaluation over per-station, event-time window state.

State is a plain JSON-able dict so a Faust table can hold it::

    {"readings": {kind: [[epoch_s, ...], [value, ...]]},   # sorted times, one per observed_at
     "emitted":  {rule_id: [tier, epoch_s]}}               # last signal sent per rule

A reading is counted once (same station + kind + observed_at replaces, never adds);
readings arriving out of order within ``allowed_lateness_s`` of the station's newest
reading land in the right window; older ones are refused with a reason. Windows are
(now - window, now], where now is the station's newest reading of that kind.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from warning.models import WARNING_TIERS, Observation, Tier, TierSignal
from warning.rules.pack import Aggregation, Rule, RulePack, TierThreshold

StationState = dict[str, Any]
Series = list[list[float]]  # [times, values]


@dataclass(frozen=True)
class EvalConfig:
    allowed_lateness_s: float = 3600.0
    refresh_s: float = 600.0  # re-send an unchanged non-none tier this often (event time)


@dataclass
class BatchResult:
    signals: list[TierSignal] = field(default_factory=list)
    late: list[tuple[Observation, str]] = field(default_factory=list)


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _daily_max(times: list[float], values: list[float], now: float, days: int, zone: str) -> float | None:
    """The smallest of the last ``days`` local days' maxima (all days present), else None."""
    offset = _zone(zone).utcoffset(datetime.fromtimestamp(now, UTC)) or 0
    shift = offset if isinstance(offset, int) else offset.total_seconds()
    today = int((now + shift) // 86400)
    start = (today - days + 1) * 86400 - shift
    lo = bisect.bisect_left(times, start)
    hi = bisect.bisect_right(times, now)
    maxima: dict[int, float] = {}
    for ts, value in zip(times[lo:hi], values[lo:hi], strict=True):
        day = int((ts + shift) // 86400)
        if value > maxima.get(day, float("-inf")):
            maxima[day] = value
    return min(maxima.values()) if len(maxima) == days else None


def aggregate(how: Aggregation, series: Series, now: float, spec: TierThreshold, zone: str) -> float | None:
    times, values = series
    if not times:
        return None
    if how == "latest":
        return values[-1]
    if how == "daily_max":
        return _daily_max(times, values, now, spec.days, zone)
    hi = bisect.bisect_right(times, now)
    if how == "sustained":
        # The value in force at the window's start (the last reading at or before it) and
        # every one since must meet the threshold: the minimum over that span.
        start = bisect.bisect_right(times, now - spec.window_s) - 1
        return min(values[start:hi]) if start >= 0 else None
    lo = bisect.bisect_right(times, now - spec.window_s)
    window = values[lo:hi]
    if not window:
        return None
    if how == "sum":
        return sum(window)
    if how == "max":
        return max(window)
    return sum(window) / len(window)


def rule_tier(rule: Rule, series: Series, now: float, zone: str = "Asia/Shanghai") -> tuple[Tier, float | None]:
    """The loudest tier whose threshold is met at ``now`` (>= threshold meets it)."""
    for tier in WARNING_TIERS:
        spec = rule.tiers.get(tier)
        if spec is None:
            continue
        value = aggregate(rule.aggregation_of(tier), series, now, spec, zone)
        # Round away float noise so 49.99999999 from summing 0.1s still reads as 50.
        if value is not None and round(value, 9) >= spec.threshold:
            return tier, value
    return Tier.none, None


def _insert(series: Series, ts: float, value: float) -> None:
    times, values = series
    i = bisect.bisect_left(times, ts)
    if i < len(times) and times[i] == ts:
        values[i] = value  # the same reading delivered again: counted once
    else:
        times.insert(i, ts)
        values.insert(i, value)


def _trim(series: Series, before: float) -> None:
    times, values = series
    cut = bisect.bisect_right(times, before)
    if cut:
        del times[:cut], values[:cut]


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
    by_kind: dict[str, Series] = state.setdefault("readings", {})
    emitted: dict[str, list[Any]] = state.setdefault("emitted", {})
    for obs in observations:
        if not pack.for_kind(obs.kind):
            continue  # a kind no rule watches is fine, just not interesting
        area = area_of(obs)
        rules = [r for r in pack.rules_at(obs.kind, area) if not r.match or r.applies_to(area, obs.model_extra)]
        if not rules:
            continue
        ts = obs.observed_at.timestamp()
        series = by_kind.setdefault(obs.kind, [[], []])
        newest = series[0][-1] if series[0] else ts
        if ts < newest - config.allowed_lateness_s:
            result.late.append((obs, f"reading is {newest - ts:.0f}s older than the station's newest; "
                                     f"allowed lateness is {config.allowed_lateness_s:.0f}s"))
            continue
        _insert(series, ts, obs.value)
        now = series[0][-1]
        # Keep one reading before the longest window: 'sustained' needs the value in force then.
        keep = max(rule.retention_s for rule in rules) + config.allowed_lateness_s
        cut = bisect.bisect_right(series[0], now - keep) - 1
        if cut > 0:
            _trim(series, series[0][cut - 1])
        for rule in rules:
            tier, value = rule_tier(rule, series, now, pack.timezone)
            last_tier, last_at = emitted.get(rule.id, [Tier.none.value, 0.0])
            changed = tier.value != last_tier
            stale = tier is not Tier.none and now - last_at >= config.refresh_s
            if changed or stale:
                emitted[rule.id] = [tier.value, now]
                result.signals.append(TierSignal(
                    hazard=rule.hazard, area=area, station_id=obs.station_id, tier=tier,
                    at=datetime.fromtimestamp(now, UTC), value=value, rule_id=rule.id))
    return result
