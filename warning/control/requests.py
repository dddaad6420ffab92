"""What officers send (the API's request bodies), checked before a command is made: a bad
request is a 422 that names the field, never a command the worker refuses later."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field, model_validator

from warning.config import AudienceRole
from warning.models import AlertText
from warning.rules.pack import RulePack
from warning.targeting.directory import Directory
from warning.targeting.grids import GridRegistry
from warning.targeting.templates import Templates

WarningTier = Literal["blue", "yellow", "orange", "red"]
Language = Literal["zh-CN", "en"]
LonLat = tuple[float, float]
DEFAULT_EXPIRES_S = 6 * 3600.0


class Circle(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    radius_km: float = Field(gt=0, le=500)


class Shape(BaseModel):
    """Fields an issue and a change share (a change names only what it changes)."""

    model_config = ConfigDict(extra="forbid")
    tier: WarningTier | None = None
    areas: list[str] | None = Field(default=None, min_length=1, max_length=100)
    polygon: list[LonLat] | None = Field(default=None, min_length=4, max_length=1000)  # GeoJSON order: lon, lat
    circle: Circle | None = None
    texts: dict[Language, AlertText] | None = None
    expires_in_s: float | None = Field(default=None, gt=0, le=7 * 86400)  # from now

    @model_validator(mode="after")
    def _closed(self) -> Shape:
        if self.polygon is not None and self.polygon[0] != self.polygon[-1]:
            raise ValueError("polygon: not closed (its first and last points must be the same)")
        for code in self.areas or []:
            if not code.isdigit() or not 6 <= len(code) <= 12:
                raise ValueError(f"areas: {code!r} is not an area code (6 to 12 digits, GB/T 2260)")
        return self

    def command_body(self, directory: Directory, now: float) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.tier is not None:
            body["tier"] = self.tier
        if self.areas is not None:
            body["areas"] = self.areas
        if self.polygon is not None:
            body["polygons"] = [[(lat, lon) for lon, lat in self.polygon]]  # CAP order: lat, lon
        if self.circle is not None:
            body["circles"] = [(self.circle.lat, self.circle.lon, self.circle.radius_km)]
        if self.texts is not None:
            body["texts"] = {lang: t.model_dump() for lang, t in self.texts.items()}
        if self.expires_in_s is not None:
            body["expires"] = now + self.expires_in_s
        return body


class UpdateRequest(Shape):
    """``PATCH /v1/alerts/{id}``, and the edits of an approve-with-edits."""


class IssueRequest(Shape):
    """``POST /v1/alerts``."""

    hazard: str = Field(min_length=1, max_length=64)
    tier: WarningTier
    areas: list[str] = Field(min_length=1, max_length=100)
    audience: list[AudienceRole] | None = Field(default=None, min_length=1)
    drill: bool = False

    def command_body(self, directory: Directory, now: float) -> dict[str, Any]:
        body = super().command_body(directory, now)
        body.update(hazard=self.hazard, drill=self.drill, audience=self.audience)
        body.setdefault("expires", now + DEFAULT_EXPIRES_S)
        return body  # without texts the templates give the standard wording and guidance


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)
    allow_reissue: Literal["higher_tier", "after_silence", "any"] = "higher_tier"


class RejectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


def _unprocessable(field: str, message: str) -> HTTPException:
    return HTTPException(422, {"message": "the request cannot be applied",
                               "errors": [{"field": field, "error": message}]})


def check_issue(body: Shape, pack: RulePack, directory: Directory, grids: GridRegistry,
                templates: Templates, hazard: str | None = None) -> None:
    """What the body's own validation cannot see: hazards, tiers and areas this deployment knows.
    ``hazard``: the alert's, for a change that names only the tier."""
    hazard = getattr(body, "hazard", None) or hazard
    if getattr(body, "hazard", None) is not None and hazard not in known_hazards(pack):
        raise _unprocessable("hazard", f"unknown hazard {hazard!r} (known: {', '.join(sorted(known_hazards(pack)))})")
    if hazard and body.tier and not templates.has_tier(hazard, body.tier):
        raise _unprocessable("tier", f"hazard {hazard!r} has no {body.tier} tier in the templates "
                                     "(WARNING_TEMPLATES_FILE)")
    for i, code in enumerate(body.areas or []):
        if not (directory.known_area(code) or grids.in_area(code)):
            raise _unprocessable(f"areas[{i}]", f"unknown area {code!r}: neither in the directory nor in the grid "
                                                "registry")


def known_hazards(pack: RulePack) -> set[str]:
    return {rule.hazard for rule in pack.rules} | set(pack.cap.events)
