"""Rule packs: YAML files of tiered thresholds, validated when loaded.

A rule names the hazard, the observation kind, the aggregation over an event-time
window, a threshold per tier (each tier may have its own window and aggregation, as the
CMA criteria do), optionally the areas it applies to and extra fields a reading must
match. A pack may ``extends`` another (``default`` is the shipped one) and override
thresholds per city or district without copying it. Errors name the file, the rule and
the field.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from warning.areas import area_prefix, inside
from warning.models import Tier
from warning.yamlfile import read_yaml

Aggregation = Literal["latest", "max", "sum", "mean", "sustained", "daily_max"]
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WINDOWED = {"max", "sum", "mean", "sustained"}


class RulePackError(ValueError):
    """A rule pack that cannot be used; the message names file, rule and field."""


def parse_duration(text: str | float | int) -> float:
    """'3h' -> 10800.0; plain numbers are seconds."""
    if isinstance(text, int | float):
        return float(text)
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"expected a duration like 30m, 3h or 2d, got {text!r}")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


class TierThreshold(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    threshold: float
    window_s: float = Field(default=0, ge=0, alias="window")
    aggregation: Aggregation | None = None  # None: the rule's
    days: int = Field(default=1, ge=1, le=31)  # daily_max: this many local days running

    @field_validator("window_s", mode="before")
    @classmethod
    def _window(cls, value: str | float) -> float:
        return parse_duration(value)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    hazard: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    unit: str = ""
    aggregation: Aggregation = "latest"
    tiers: dict[Tier, TierThreshold]
    areas: list[str] = Field(default_factory=list)  # empty: everywhere
    match: dict[str, str] = Field(default_factory=dict)  # extra fields a reading must carry
    source: str = ""  # where the numbers come from (CMA signal, GB/T standard…)

    @model_validator(mode="after")
    def _tiers_consistent(self) -> Rule:
        if Tier.none in self.tiers or not self.tiers:
            raise ValueError("tiers must name at least one of blue, yellow, orange, red")
        for tier, spec in self.tiers.items():
            how = self.aggregation_of(tier)
            if how == "latest" and spec.window_s:
                raise ValueError(f"tier {tier.value}: aggregation 'latest' takes no window")
            if how in _WINDOWED and not spec.window_s:
                raise ValueError(f"tier {tier.value}: aggregation {how!r} needs a window")
        return self

    def aggregation_of(self, tier: Tier) -> Aggregation:
        return self.tiers[tier].aggregation or self.aggregation

    @cached_property
    def retention_s(self) -> float:
        """How much history this rule needs per station."""
        return max(max(t.window_s, t.days * 86400 if self.aggregation_of(k) == "daily_max" else 0)
                   for k, t in self.tiers.items())

    def applies_to(self, area: str, extra: dict[str, Any] | None) -> bool:
        if self.areas and not any(inside(area, a) for a in self.areas):
            return False
        return all(str((extra or {}).get(k)) == v for k, v in self.match.items())


class Override(BaseModel):
    """New thresholds for one rule inside one area (city, district…); the most specific wins."""

    model_config = ConfigDict(extra="forbid")
    area: str = Field(pattern=r"^\d{2,12}$")
    rule: str
    tiers: dict[Tier, dict[str, Any]]


class CapMapping(BaseModel):
    """How a met bureau's own CAP warnings feed the lifecycle."""

    model_config = ConfigDict(extra="forbid")
    events: dict[str, list[str]] = Field(default_factory=dict)  # hazard -> event names (any language)
    geocodes: list[str] = Field(default_factory=lambda: ["GB/T 2260", "adcode", "ADCODE"])
    severity_tiers: dict[str, Tier] = Field(default_factory=lambda: {
        "Extreme": Tier.red, "Severe": Tier.orange, "Moderate": Tier.yellow, "Minor": Tier.blue,
        "Unknown": Tier.blue})

    def hazard_of(self, event: str) -> str | None:
        """The hazard whose longest name the event contains (雷雨大风 is not 大风)."""
        lowered = event.strip().lower()
        found = [(len(name), hazard) for hazard, names in self.events.items() for name in names
                 if name.lower() in lowered]
        return max(found)[1] if found else None

    def area_code(self, name: str, value: str) -> str | None:
        """The GB/T 2260 code a geocode names, or None for a scheme the pack does not map.

        A 12-digit CPEAS code is the county's 6 digits, its township's 3 and 3 more: its
        trailing zeros are dropped to the township (9) or county (6) the directory knows."""
        if name not in self.geocodes or not value.isdigit():
            return None
        if len(value) == 12 and "cpeas" in name.lower():
            return value[:6] if value[6:] == "000000" else value[:9] if value[9:] == "000" else value
        return value


class RulePack(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    extends: str | None = None
    rules: list[Rule] = Field(default_factory=list)
    overrides: list[Override] = Field(default_factory=list)
    cap: CapMapping = Field(default_factory=CapMapping)
    timezone: str = "Asia/Shanghai"  # local calendar days for daily_max

    @model_validator(mode="after")
    def _consistent(self) -> RulePack:
        ids = [rule.id for rule in self.rules]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate rule id(s) {dupes}")
        for i, override in enumerate(self.overrides):
            rule = next((r for r in self.rules if r.id == override.rule), None)
            if rule is None:
                raise ValueError(f"overrides[{i}]: no rule {override.rule!r} to override")
            self._apply(rule, override)  # validates the merged thresholds now, not mid-stream
        return self

    @staticmethod
    def _apply(rule: Rule, override: Override) -> Rule:
        tiers = {k.value: v.model_dump(by_alias=True, exclude_defaults=True) for k, v in rule.tiers.items()}
        for tier, fields in override.tiers.items():
            tiers[tier.value] = {**tiers.get(tier.value, {}), **fields}
        return Rule.model_validate({**rule.model_dump(exclude={"tiers"}), "tiers": tiers})

    @cached_property
    def _by_kind(self) -> dict[str, list[Rule]]:
        out: dict[str, list[Rule]] = {}
        for rule in self.rules:
            out.setdefault(rule.kind, []).append(rule)
        return out

    def for_kind(self, kind: str) -> list[Rule]:
        return self._by_kind.get(kind, [])

    def rules_at(self, kind: str, area: str) -> list[Rule]:
        """The rules for this kind that apply in this area, overrides applied (cached).

        Rules with ``match`` still need :meth:`Rule.applies_to` per reading.
        """
        key = (kind, area)
        found = self._rules_at.get(key)
        if found is None:
            found = [self.effective(r, area) for r in self.for_kind(kind)
                     if not r.areas or any(inside(area, a) for a in r.areas)]
            self._rules_at[key] = found
        return found

    @cached_property
    def _rules_at(self) -> dict[tuple[str, str], list[Rule]]:
        return {}

    def effective(self, rule: Rule, area: str) -> Rule:
        """The rule with the most specific override for this area applied."""
        matching = [o for o in self.overrides if o.rule == rule.id and inside(area, o.area)]
        if not matching:
            return rule
        best = max(matching, key=lambda o: len(area_prefix(o.area)))
        return self._effective_cache.setdefault((rule.id, best.area), self._apply(rule, best))

    @cached_property
    def _effective_cache(self) -> dict[tuple[str, str], Rule]:
        return {}


def _describe(exc: ValidationError, source: str, raw: dict[str, Any]) -> str:
    parts = []
    rules_raw = raw.get("rules")
    rules: list[Any] = rules_raw if isinstance(rules_raw, list) else []
    for err in exc.errors():
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc) or "(pack)"
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            entry = rules[loc[1]] if loc[1] < len(rules) else None
            rule_id = entry.get("id") if isinstance(entry, dict) else None
            field = ".".join(str(p) for p in loc[2:])
            where = f"rule {rule_id or '#' + str(loc[1])}" + (f": field {field}" if field else "")
        parts.append(f"{source}: {where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def _read(path: Path | None) -> tuple[str, dict[str, Any]]:
    source, raw = read_yaml(path, "default-rules.yaml", "rule pack", RulePackError)
    if not isinstance(raw, dict):
        raise RulePackError(f"{source}: expected a mapping with 'name' and 'rules'")
    return source, raw


def load_pack(path: Path | None = None, _seen: tuple[str, ...] = ()) -> RulePack:
    """Load and validate a rule pack; ``None`` loads the default pack in the package."""
    source, raw = _read(path)
    if source in _seen:
        raise RulePackError(f"{source}: 'extends' goes round in a circle: {' -> '.join((*_seen, source))}")
    parent = raw.get("extends")
    if parent is not None:
        if not isinstance(parent, str):
            raise RulePackError(f"{source}: field extends: expected 'default' or a file path")
        base_path = None if parent == "default" else (Path(source).parent / parent)
        base = load_pack(base_path, (*_seen, source))
        own_ids = {r.get("id") for r in raw.get("rules") or [] if isinstance(r, dict)}
        raw = {**raw, "rules": [r.model_dump(by_alias=True, exclude_defaults=True) for r in base.rules
                                if r.id not in own_ids] + list(raw.get("rules") or []),
               "overrides": [o.model_dump() for o in base.overrides] + list(raw.get("overrides") or []),
               "cap": raw.get("cap", base.cap.model_dump())}
    try:
        return RulePack.model_validate(raw)
    except ValidationError as exc:
        raise RulePackError(_describe(exc, source, raw)) from exc
