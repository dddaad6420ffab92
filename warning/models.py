"""Records that flow through the pipeline. Plain pydantic models, no I/O."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator


class Tier(StrEnum):
    """China's four warning-signal tiers; ``none`` means no warning."""

    none = "none"
    blue = "blue"
    yellow = "yellow"
    orange = "orange"
    red = "red"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def highest(cls, tiers: list[Tier]) -> Tier:
        return max(tiers, key=lambda t: t.rank, default=cls.none)


_RANK = {Tier.none: 0, Tier.blue: 1, Tier.yellow: 2, Tier.orange: 3, Tier.red: 4}
WARNING_TIERS = (Tier.red, Tier.orange, Tier.yellow, Tier.blue)  # loudest first

MsgType = Literal["Alert", "Update", "Cancel"]


class Observation(BaseModel):
    """One sensor reading as feed publishers send it. Extra fields are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    station_id: str = Field(min_length=1, max_length=128)
    kind: str = Field(min_length=1, max_length=64)
    value: float
    unit: str = Field(default="", max_length=32)
    observed_at: AwareDatetime
    period_s: float | None = Field(default=None, gt=0)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("value must be a finite number")
        return value


class TierSignal(BaseModel):
    """A station's current tier for one hazard, sent from evaluate to lifecycle."""

    hazard: str
    area: str
    station_id: str
    tier: Tier
    at: datetime  # observed_at of the reading that produced it
    value: float | None = None  # the aggregate that met the threshold
    rule_id: str = ""
    expires: datetime | None = None  # the issuer's own expiry (CAP), else the lifecycle's TTL
    final: bool = False  # the source withdraws itself (a CAP Cancel): no downgrade hold
    polygons: list[list[tuple[float, float]]] = Field(default_factory=list)  # CAP (lat, lon) rings
    circles: list[tuple[float, float, float]] = Field(default_factory=list)  # CAP lat, lon, radius km
    drill: bool = False  # a CAP Exercise: its own alert, never merged with a live one

    @property
    def alert_key(self) -> str:
        key = alert_key(self.hazard, self.area)
        return f"drill:{key}" if self.drill else key

    @property
    def source_kind(self) -> Literal["rule", "cap"]:
        return "cap" if self.rule_id == "cap" else "rule"

    @property
    def source(self) -> str:
        """What this signal speaks for: one rule at one station (or one CAP chain)."""
        return f"{self.station_id}#{self.rule_id}" if self.rule_id else self.station_id


def alert_key(hazard: str, area: str) -> str:
    return f"{hazard}:{area}"


def is_drill(alert_id: str) -> bool:
    """Drill ids say so (``drill-…``), so metrics and reports keep drills apart without a lookup."""
    return alert_id.startswith("drill-")


class Reference(BaseModel):
    """An earlier version this one refers to (CAP's sender,identifier,sent triple, less sender)."""

    identifier: str
    sent: datetime


Segment = Literal["staff", "residents"]  # grid workers, endpoints and officers / the public
ALL_SEGMENTS: tuple[Segment, ...] = ("staff", "residents")


class AlertText(BaseModel):
    """What an officer wrote (or the templates gave) for one language."""

    model_config = ConfigDict(extra="forbid")
    headline: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    instruction: str = Field(default="", max_length=2000)


class AlertVersion(BaseModel):
    """One version of an alert, as published on ``warning.alerts``."""

    alert_id: str
    key: str
    hazard: str
    area: str
    tier: Tier
    version: int = Field(ge=1)
    msg_type: MsgType
    references: list[Reference] = Field(default_factory=list)  # earlier versions, oldest first
    caused_at: datetime  # observed_at of the reading that caused this version
    issued_at: datetime  # wall clock when the pipeline decided it
    expires: datetime
    cause: str = ""  # human-readable: which station, value, window
    polygons: list[list[tuple[float, float]]] = Field(default_factory=list)  # from a CAP warning
    circles: list[tuple[float, float, float]] = Field(default_factory=list)
    source: Literal["rule", "cap", "manual"] = "rule"
    areas: list[str] = Field(default_factory=list)  # further areas of a hand-made alert (beyond ``area``)
    texts: dict[str, AlertText] = Field(default_factory=dict)  # a hand-made alert's texts, per language
    audience: list[str] | None = None  # an officer's audience override (roles), else the tier's policy
    drill: bool = False  # CAP status Exercise: only the drill audience, every text marked as a drill
    release: list[Segment] = Field(default_factory=lambda: list(ALL_SEGMENTS))  # who may be told now
    author: str = ""  # who made or last changed it by hand

    @property
    def all_areas(self) -> list[str]:
        return [self.area, *(a for a in self.areas if a != self.area)]

    @property
    def identifier(self) -> str:
        """The CAP identifier of this version."""
        return f"{self.alert_id}.v{self.version}"


class Rejection(BaseModel):
    """A record that could not be processed, as published on ``warning.rejected``."""

    stage: str
    reason: str
    source_topic: str
    key: str | None = None
    payload: str  # the original bytes, decoded as UTF-8 or else base64 (see payload_encoding)
    payload_encoding: Literal["utf-8", "base64"] = "utf-8"
    rejected_at: datetime


class Ack(BaseModel):
    """A duty officer's or grid worker's acknowledgement, on ``warning.acks``."""

    event: Literal["ack"] = "ack"
    alert_id: str
    by: str
    at: datetime
    via: str = "cli"
    version: int = 0  # the alert version acknowledged (0: whichever is current)
    role: str = ""  # officer, grid_worker or admin
    level: str = ""  # an officer's level (township, district, …)


class FeedbackReport(BaseModel):
    """What a grid worker (or officer) reports from the ground (the API's request body)."""

    status: Literal["已处置", "需支援", "处置中", "无异常", "handled", "need_support", "in_progress", "all_clear"]
    text: str = Field(default="", max_length=2000)
    photo_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://\S+$")


class Feedback(FeedbackReport):
    """A report with who sent it and when, on ``warning.acks``."""

    event: Literal["feedback"] = "feedback"
    alert_id: str
    by: str
    at: datetime


class DeliveryJob(BaseModel):
    """One message to one recipient on one channel; identity = (alert, version, recipient, channel)."""

    alert_id: str
    version: int
    tier: Tier
    msg_type: MsgType
    channel: str
    recipient: str
    address: str  # phone number, push token or endpoint URL: never logged unmasked
    language: str = "zh-CN"
    text: str
    expires: float  # epoch seconds: a job past this is dropped, never sent
    issued_at: float  # epoch seconds the alert version was issued (reach is measured from it)
    attempt: int = 1
    fallback: list[tuple[str, str]] = Field(default_factory=list)  # (channel, address) to try next, in order

    @property
    def delivery_id(self) -> str:
        return delivery_id(self.alert_id, self.version, self.channel, self.recipient)


def delivery_id(alert_id: str, version: int, channel: str, recipient: str) -> str:
    return f"{alert_id}.v{version}.{channel}.{recipient}"
