"""The release policy (pure): which audience segments of a version go at once (the green
channel) and which wait for a second person, checked at startup like the rule pack."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from warning.models import ALL_SEGMENTS, Segment, Tier
from warning.yamlfile import load_model

Source = Literal["rule", "cap", "manual"]
SEGMENTS = ALL_SEGMENTS
Release = Literal["auto", "approve"]
WarningTier = Literal["blue", "yellow", "orange", "red"]


class ReleasePolicyError(ValueError):
    """A policy file that cannot be used; names the file and the field."""


class PolicyRule(BaseModel):
    """Matches when every field it names matches; ``release`` is what it decides."""

    model_config = ConfigDict(extra="forbid")
    source: Source | None = None
    hazard: str | None = None
    tier: list[WarningTier] | None = None
    segment: Segment | None = None
    corroborated: bool | None = None
    release: Release

    def matches(self, source: str, hazard: str, tier: Tier, segment: Segment, corroborated: bool) -> bool:
        return ((self.source is None or self.source == source)
                and (self.hazard is None or self.hazard == hazard)
                and (self.tier is None or tier.value in self.tier)
                and (self.segment is None or self.segment == segment)
                and (self.corroborated is None or self.corroborated == corroborated))


def _hold() -> dict[WarningTier, float]:
    return {"red": 300.0, "orange": 600.0, "yellow": 1800.0, "blue": 3600.0}


def _timeout() -> dict[WarningTier, Literal["release", "escalate"]]:
    return {"red": "release", "orange": "release", "yellow": "escalate", "blue": "escalate"}


class ReleasePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    corroboration: int = Field(default=2, ge=1)
    hold_s: dict[WarningTier, float] = Field(default_factory=_hold)
    on_timeout: dict[WarningTier, Literal["release", "escalate"]] = Field(default_factory=_timeout)
    rules: list[PolicyRule] = Field(default_factory=list)

    def release(self, source: str, hazard: str, tier: Tier, segment: Segment, corroborated: bool) -> Release:
        for rule in self.rules:
            if rule.matches(source, hazard, tier, segment, corroborated):
                return rule.release
        return "auto"

    def held(self, source: str, hazard: str, tier: Tier, corroborated: bool) -> list[Segment]:
        """The segments of a version that wait for an approver (a Cancel never waits)."""
        if tier is Tier.none:
            return []
        return [s for s in SEGMENTS if self.release(source, hazard, tier, s, corroborated) == "approve"]

    def hold_for(self, tier: Tier) -> float:
        return float(self.hold_s.get(tier.value, 600.0)) if tier is not Tier.none else 0.0  # type: ignore[call-overload]

    def timeout_action(self, tier: Tier) -> Literal["release", "escalate"]:
        return self.on_timeout.get(tier.value, "release") if tier is not Tier.none else "release"  # type: ignore[call-overload]


AUTO = ReleasePolicy()  # no rules: everything at once (replays, benchmarks of the pipeline alone)


def auto_policy_file() -> Path:
    """warning/data/release-auto.yaml, for processes (benchmarks, delivery tests) that must not wait."""
    return Path(str(resources.files("warning.data").joinpath("release-auto.yaml")))


def load_policy(path: Path | None = None) -> ReleasePolicy:
    """Load the policy; ``None`` loads the default shipped in the package."""
    return load_model(ReleasePolicy, path, "release-policy.yaml", "release policy", ReleasePolicyError)
