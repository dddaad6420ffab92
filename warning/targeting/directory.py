"""The static directory (YAML): city, area names, stations and the audience policy.

People live in Redis (targeting/recipients.py, imported with `warning recipients
import`) and grids in the GeoJSON registry (targeting/grids.py). Area codes are GB/T
2260-style and hierarchical (see warning/areas.py).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from warning.config import known_time_zone
from warning.models import Tier
from warning.yamlfile import describe, read_yaml

OfficerLevel = Literal["township", "district", "city"]
Channel = Literal["sms", "push", "grid"]


class DirectoryError(ValueError):
    """A directory file that cannot be used; names the file and the field."""


class Area(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^\d{6,12}$")
    name: str
    name_en: str = ""


class Station(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    area: str  # the area code its alerts are raised for


def _sms_only() -> list[Literal["push", "sms"]]:
    return ["sms"]


class Person(BaseModel):
    """One line of a recipients import."""

    model_config = ConfigDict(extra="forbid")
    id: str
    role: Literal["resident", "grid_worker", "officer"]
    name: str = ""
    phone: str | None = Field(default=None, pattern=r"^\+\d{6,15}$")
    push_token: str | None = None
    language: Literal["zh-CN", "en"] = "zh-CN"
    channels: list[Literal["push", "sms"]] = Field(default_factory=_sms_only)
    grid: str | None = None  # residents
    grids: list[str] = Field(default_factory=list)  # grid workers
    level: OfficerLevel | None = None  # officers
    jurisdiction: str | None = None  # officers: an area code
    opted_in: bool = False  # residents: wants yellow-tier alerts

    @model_validator(mode="after")
    def _role_fields(self) -> Person:
        if self.role == "officer" and (self.level is None or self.jurisdiction is None):
            raise ValueError("an officer needs level and jurisdiction")
        if self.role == "resident" and self.grid is None:
            raise ValueError("a resident needs a grid")
        if self.role == "grid_worker" and not self.grids:
            raise ValueError("a grid worker needs grids")
        return self


class Audience(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grid_workers: bool = True
    grid_endpoints: bool = True
    officers: list[OfficerLevel] = Field(default_factory=list)
    residents: Literal["none", "opted_in", "all"] = "none"
    # Also the area's cells (one broadcast per area and language, no list of numbers), when
    # the residents may be told; later versions and the Cancel follow it to the same cells.
    cell_broadcast: bool = False


def _default_audience() -> dict[Tier, Audience]:
    return {
        Tier.blue: Audience(officers=["township"]),
        Tier.yellow: Audience(officers=["township"], residents="opted_in"),
        Tier.orange: Audience(officers=["township", "district"], residents="all", cell_broadcast=True),
        Tier.red: Audience(officers=["township", "district", "city"], residents="all", cell_broadcast=True),
    }


class Directory(BaseModel):
    model_config = ConfigDict(extra="forbid")
    city: Area
    timezone: str = "Asia/Shanghai"  # the city's: every time a person reads is in it, never UTC
    areas: list[Area] = Field(default_factory=list)
    stations: list[Station] = Field(default_factory=list)
    audience: dict[Tier, Audience] = Field(default_factory=_default_audience)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_time_zone(value)

    def known_area(self, code: str) -> bool:
        return any(area.code == code for area in [self.city, *self.areas])

    @cached_property
    def _station_areas(self) -> dict[str, str]:
        return {station.id: station.area for station in self.stations}

    def area_of_station(self, station_id: str) -> str:
        """The area a station's alerts are raised for; unknown stations get their own key."""
        return self._station_areas.get(station_id) or f"station:{station_id}"

    def area_name(self, code: str, language: str = "zh-CN") -> str:
        for area in [self.city, *self.areas]:
            if area.code == code:
                return area.name_en if language == "en" and area.name_en else area.name
        return code


def load_directory(path: Path | None = None) -> Directory:
    """Load the directory; ``None`` loads the bundled demo directory."""
    source, raw = read_yaml(path, "demo-directory.yaml", "directory", DirectoryError)
    moved = [name for name in ("people", "grids") if isinstance(raw, dict) and name in raw]
    if moved:
        raise DirectoryError(f"{source}: {' and '.join(moved)} no longer belong in the directory file: "
                             "load people with `warning recipients import` and grids with "
                             "`warning grids import` (they live in Redis)")
    try:
        return Directory.model_validate(raw)
    except ValidationError as exc:
        detail = describe(exc)
        raise DirectoryError(f"{source}: {detail}") from exc
