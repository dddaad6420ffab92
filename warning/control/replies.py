"""The Redis side of officers' commands: outcomes (the API waits for its own), the index of
pending approvals (``GET /v1/approvals``) and the alerts' history. The lifecycle agent
writes them once its state is in the changelog; this module owns those keys."""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

from warning.control.commands import Outcome
from warning.keys import Keys

OUTCOME_TTL_S = 86400  # a client retrying with the same Idempotency-Key within a day gets the first answer
REPLY_TTL_S = 120


async def answer(redis: aioredis.Redis, keys: Keys, answers: dict[str, Outcome]) -> None:
    """Store each command's outcome and wake the request waiting on it."""
    if not answers:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for cid, outcome in answers.items():
            raw = orjson.dumps({"status": outcome.status, "body": outcome.body})
            pipe.set(keys.control_outcome(cid), raw, ex=OUTCOME_TTL_S)
            pipe.rpush(keys.control_reply(cid), raw)
            pipe.expire(keys.control_reply(cid), REPLY_TTL_S)
        await pipe.execute()


async def claim_alert_id(redis: aioredis.Redis, keys: Keys, cid: str, proposed: str) -> str:
    """The alert id of a command: the first request's, for every retry of it (even in flight)."""
    await redis.set(keys.control_alert(cid), proposed, nx=True, ex=OUTCOME_TTL_S)
    return str(await redis.get(keys.control_alert(cid)) or proposed)


async def outcome_of(redis: aioredis.Redis, keys: Keys, cid: str) -> Outcome | None:
    raw = await redis.get(keys.control_outcome(cid))
    return _outcome(raw) if raw else None


async def wait_for_outcome(redis: aioredis.Redis, keys: Keys, cid: str, timeout_s: float) -> Outcome | None:
    got = await redis.blpop([keys.control_reply(cid)], timeout=timeout_s)
    return _outcome(got[1]) if got else await outcome_of(redis, keys, cid)


def _outcome(raw: str | bytes) -> Outcome:
    data = orjson.loads(raw)
    return Outcome(int(data["status"]), data["body"])


def approval_summary(alert_id: str, pending: dict[str, Any]) -> dict[str, Any]:
    alert = pending["alert"]
    headline = {lang: t.get("headline", "") for lang, t in (alert.get("texts") or {}).items()}
    return {"approval_id": pending["approval_id"], "alert_id": alert_id, "version": pending["version"],
            "hazard": alert["hazard"], "tier": alert["tier"], "area": alert["area"],
            "areas": list(dict.fromkeys([alert["area"], *alert.get("areas", [])])),
            "source": alert.get("source", "rule"),
            "drill": alert.get("drill", False), "segments": pending["segments"], "author": pending["author"],
            "requested_at": pending["requested_at"], "hold_until": pending["hold_until"],
            "level": pending["level"], "headline": headline, "cause": alert.get("cause", "")}


async def index_approvals(redis: aioredis.Redis, keys: Keys, changed: dict[str, dict[str, Any] | None]) -> None:
    """alert id -> its pending approval, or None where nothing waits any more."""
    if not changed:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for alert_id, pending in changed.items():
            if pending is None:
                pipe.hdel(keys.approvals, alert_id)
            else:
                pipe.hset(keys.approvals, alert_id, orjson.dumps(approval_summary(alert_id, pending)))
        await pipe.execute()


async def pending_approvals(redis: aioredis.Redis, keys: Keys) -> list[dict[str, Any]]:
    found = [orjson.loads(v) for v in (await redis.hgetall(keys.approvals)).values()]
    return sorted(found, key=lambda a: a["hold_until"])
