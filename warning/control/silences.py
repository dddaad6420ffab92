"""Silences, like Alertmanager's: matchers on station, rule, hazard, area (prefix) and source,
with a start, an end, an author and a comment. A silenced source's readings are still
evaluated and kept, but its signals change no alert while the silence lasts. A silence
never hides an alert made by hand (it matches only rule and CAP sources).

They live in Redis (a hash of silence id -> JSON and a version counter this module owns),
so they survive restarts; every worker re-reads them when the version moves, at most
``REFRESH_S`` after a change.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import Any, Literal

import redis.asyncio as aioredis
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from warning.areas import inside
from warning.keys import Keys
from warning.models import TierSignal

REFRESH_S = 0.5
SilenceStatus = Literal["active", "pending_approval", "expired", "scheduled"]


class Matchers(BaseModel):
    model_config = ConfigDict(extra="forbid")
    station: str | None = Field(default=None, min_length=1, max_length=128)
    rule: str | None = Field(default=None, min_length=1, max_length=128)
    hazard: str | None = Field(default=None, min_length=1, max_length=64)
    area: str | None = Field(default=None, pattern=r"^\d{2,12}$")  # this area and everything inside it
    source: Literal["rule", "cap"] | None = None

    @model_validator(mode="after")
    def _some(self) -> Matchers:
        if not any(v is not None for v in self.model_dump().values()):
            raise ValueError("a silence needs at least one matcher (station, rule, hazard, area or source)")
        return self

    def match(self, station: str, rule: str, hazard: str, area: str, source: str) -> bool:
        return ((self.station is None or self.station == station)
                and (self.rule is None or self.rule == rule)
                and (self.hazard is None or self.hazard == hazard)
                and (self.area is None or inside(area, self.area))
                and (self.source is None or self.source == source))


class SilenceRequest(BaseModel):
    """The body of ``POST /v1/silences``."""

    model_config = ConfigDict(extra="forbid")
    matchers: Matchers
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime
    comment: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _window(self) -> SilenceRequest:
        if self.ends_at <= (self.starts_at or datetime.now(UTC)):
            raise ValueError("ends_at must be after starts_at (and in the future)")
        return self


class Silence(SilenceRequest):
    silence_id: str
    author: str
    created_at: float
    approved_by: str | None = None  # a silence over an active red alert needs a second person
    needs_approval: bool = False
    expired_at: float | None = None  # ended early by `warning silence expire` / DELETE

    def status(self, now: float) -> SilenceStatus:
        if self.expired_at is not None or now >= self.ends_at.timestamp():
            return "expired"
        if self.needs_approval and not self.approved_by:
            return "pending_approval"
        if self.starts_at is not None and now < self.starts_at.timestamp():
            return "scheduled"
        return "active"

    def silences(self, signal: TierSignal, now: float) -> bool:
        return self.status(now) == "active" and self.matchers.match(
            signal.station_id, signal.rule_id, signal.hazard, signal.area, signal.source_kind)


def new_silence(request: SilenceRequest, author: str, needs_approval: bool) -> Silence:
    return Silence(**request.model_dump(), silence_id=f"sil-{secrets.token_hex(6)}", author=author,
                   created_at=time.time(), needs_approval=needs_approval)


class SilenceStore:
    """The silences in Redis, and a worker's copy of them (re-read when their version moves)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._known: list[Silence] = []
        self._version: Any = None
        self._checked = 0.0

    async def save(self, silence: Silence) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.silences, silence.silence_id, silence.model_dump_json())
            pipe.incr(self.keys.silences_version)
            await pipe.execute()

    async def expire(self, silence_id: str) -> Silence | None:
        """End a silence now (once: a second call keeps the first end); None if there is none."""
        silence = await self.get(silence_id)
        if silence is not None and silence.expired_at is None:
            silence = silence.model_copy(update={"expired_at": time.time()})
            await self.save(silence)
        return silence

    async def get(self, silence_id: str) -> Silence | None:
        raw = await self.redis.hget(self.keys.silences, silence_id)
        return Silence.model_validate_json(raw) if raw else None

    async def all(self) -> list[Silence]:
        return sorted((Silence.model_validate_json(v) for v in (await self.redis.hgetall(self.keys.silences)).values()),
                      key=lambda s: s.created_at)

    async def current(self) -> list[Silence]:
        """The silences as of at most ``REFRESH_S`` ago (one GET when nothing changed)."""
        now = time.monotonic()
        if now - self._checked >= REFRESH_S:
            self._checked = now
            version = await self.redis.get(self.keys.silences_version)
            if version != self._version:
                self._known, self._version = await self.all(), version
        return self._known

    async def silencing(self, signal: TierSignal, now: float | None = None) -> Silence | None:
        """The silence that holds this signal back, if any (CAP and rule sources only)."""
        at = time.time() if now is None else now
        return next((s for s in await self.current() if s.silences(signal, at)), None)
