"""Rule packs: YAML files of tiered thresholds, validated when loaded.

A rule names the hazard, the observation kind, the aggregation over an event-time
window, and a threshold per tier (each tier may have its own window, as the CMA
rainstorm criteria do). Errors name the file, the rule and the field.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from warning.models import Tier

Aggregation = Literal["latest", "max", "sum", "mean"]
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


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
    model_config = ConfigDict(extra="forbid")

    threshold: float
    window_s: float = Field(default=0, ge=0, alias="window")

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
    source: str = ""  # where the numbers come from (CMA signal, GB/T standard…)

    @model_validator(mode="after")
    def _tiers_ordered(self) -> Rule:
        if Tier.none in self.tiers or not self.tiers:
            raise ValueError("tiers must name at least one of blue, yellow, orange, red")
        if self.aggregation == "latest" and any(t.window_s for t in self.tiers.values()):
            raise ValueError("aggregation 'latest' takes no window")
        if self.aggregation != "latest" and any(not t.window_s for t in self.tiers.values()):
            raise ValueError(f"aggregation {self.aggregation!r} needs a window on every tier")
        return self

    @property
    def retention_s(self) -> float:
        """How much history this rule needs per station."""
        return max(t.window_s for t in self.tiers.values())


class RulePack(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    rules: list[Rule]

    @model_validator(mode="after")
    def _unique_ids(self) -> RulePack:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"duplicate rule id {rule.id!r}")
            seen.add(rule.id)
        return self

    def for_kind(self, kind: str) -> list[Rule]:
        return [rule for rule in self.rules if rule.kind == kind]


def _describe(exc: ValidationError, source: str, raw: dict[str, object]) -> str:
    parts = []
    rules_raw = raw.get("rules")
    rules: list[object] = rules_raw if isinstance(rules_raw, list) else []
    for err in exc.errors():
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc) or "(pack)"
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            entry = rules[loc[1]] if loc[1] < len(rules) else None
            rule_id = entry.get("id") if isinstance(entry, dict) else None
            field = ".".join(str(p) for p in loc[2:]) or "(rule)"
            where = f"rule {rule_id or '#' + str(loc[1])}: field {field}"
        parts.append(f"{source}: {where}: {err['msg']}")
    return "; ".join(parts)


def load_pack(path: Path | None = None) -> RulePack:
    """Load and validate a rule pack; ``None`` loads the default pack in the package."""
    if path is None:
        source = "warning/data/default-rules.yaml"
        text = resources.files("warning.data").joinpath("default-rules.yaml").read_text("utf-8")
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise RulePackError(f"{path}: cannot read rule pack: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulePackError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise RulePackError(f"{source}: expected a mapping with 'name' and 'rules'")
    try:
        return RulePack.model_validate(raw)
    except ValidationError as exc:
        raise RulePackError(_describe(exc, source, raw)) from exc
