"""API tokens: who may call what. Only a SHA-256 of each token is stored; the token is
shown once, when it is created (`warning tokens create`)."""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Literal

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from warning.areas import covers, inside
from warning.keys import Keys

Role = Literal["publisher", "grid_worker", "officer", "issuer", "admin"]
TOKEN_PREFIX = "wt_"


class Principal(BaseModel):
    """The caller behind a token (logged by id, never by token)."""

    id: str  # the person (officer / grid worker id in the directory) or a publisher's name
    role: Role
    level: str = ""  # officers: township, district, city, province
    area: str = ""  # officers: their jurisdiction (area code); grid workers: their grids, comma-separated
    created_at: float = Field(default_factory=time.time)

    @property
    def grids(self) -> list[str]:
        return [g for g in self.area.split(",") if g] if self.role == "grid_worker" else []

    def may_respond(self, alert_area: str, alert_grids: set[str]) -> bool:
        """Acknowledge or report on an alert: admins anywhere, officers in their jurisdiction,
        grid workers for an alert sent to one of their grids."""
        if self.role == "admin":
            return True
        if self.role == "officer":
            return bool(self.area) and covers(self.area, alert_area)
        if self.role == "grid_worker":
            return any(g in alert_grids or inside(g, alert_area) for g in self.grids)
        return False


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def create(self, principal: Principal) -> str:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        await self.redis.hset(self.keys.tokens, digest(token), principal.model_dump_json())
        return token

    async def lookup(self, token: str) -> Principal | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        raw = await self.redis.hget(self.keys.tokens, digest(token))
        return Principal.model_validate_json(raw) if raw else None

    async def list(self) -> list[tuple[str, Principal]]:
        """(digest prefix, principal) of every token: enough to revoke one, not to use it."""
        items = await self.redis.hgetall(self.keys.tokens)
        return [(str(k)[:12], Principal.model_validate_json(v)) for k, v in items.items()]

    async def revoke(self, prefix: str) -> int:
        gone = [k for k in await self.redis.hkeys(self.keys.tokens) if str(k).startswith(prefix)]
        return int(await self.redis.hdel(self.keys.tokens, *gone)) if gone and len(prefix) >= 8 else 0
