"""Record an acknowledgement once per officer; the caller publishes it on warning.acks."""

from __future__ import annotations

import redis.asyncio as aioredis

from warning.keys import Keys
from warning.models import Ack


class UnknownAlert(LookupError):
    pass


async def record_ack(redis: aioredis.Redis, keys: Keys, ack: Ack) -> bool:
    """True the first time this person acknowledges this alert; False for a repeat."""
    if not await redis.exists(keys.alert(ack.alert_id)):
        raise UnknownAlert(f"no alert {ack.alert_id!r}")
    return bool(await redis.hsetnx(keys.acks(ack.alert_id), ack.by, ack.model_dump_json()))
