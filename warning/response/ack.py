"""Acknowledgements: recorded once per person and alert version, stop the escalation chain,
count towards the grid quorum, and join the alert's audit trail. The caller publishes the
returned event on ``warning.acks`` (the API with aiokafka, the CLI with kafka-python)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from warning.keys import Keys
from warning.models import Ack
from warning.store.alerts import AlertRecords


class UnknownAlert(LookupError):
    pass


@dataclass(frozen=True)
class AckOutcome:
    ack: Ack
    first: bool  # False: this person had already acknowledged this version
    stopped_escalation: bool


async def record_ack(redis: aioredis.Redis, keys: Keys, ack: Ack) -> tuple[Ack, bool]:
    """The ack with its version filled in, and whether it is the person's first for that version."""
    version = (await AlertRecords(redis, keys).current_versions([ack.alert_id]))[ack.alert_id]
    if not version:
        raise UnknownAlert(f"no alert {ack.alert_id!r}")
    ack = ack.model_copy(update={"version": ack.version or version})
    first = bool(await redis.hsetnx(keys.acks(ack.alert_id), f"{ack.by}:v{ack.version}", ack.model_dump_json()))
    if first:
        await audit(redis, keys, ack.alert_id, orjson.loads(ack.model_dump_json()))
    return ack, first


async def acknowledge(redis: aioredis.Redis, keys: Keys, ack: Ack, grids: list[str] | None = None) -> AckOutcome:
    """Record, stop the chain (an ack at any level does), confirm the worker's grids."""
    from warning.response.escalation import stop_chain

    ack, first = await record_ack(redis, keys, ack)
    stopped = await stop_chain(redis, keys, ack.alert_id, "acknowledged")
    if grids:
        targeted = await redis.smembers(keys.alert_grids(ack.alert_id))
        for grid in grids:
            if grid in targeted:
                await redis.sadd(keys.confirmations(ack.alert_id) + f":{grid}", ack.by)
    return AckOutcome(ack, first, stopped)


async def audit(redis: aioredis.Redis, keys: Keys, alert_id: str, event: dict[str, object]) -> None:
    """Append to the alert's audit trail in Redis (ack, escalation, feedback), as on warning.acks."""
    key = keys.audit(alert_id)
    await redis.rpush(key, orjson.dumps(event))
    await redis.expire(key, 30 * 86400)


async def audit_trail(redis: aioredis.Redis, keys: Keys, alert_id: str) -> list[dict[str, object]]:
    return [orjson.loads(raw) for raw in await redis.lrange(keys.audit(alert_id), 0, -1)]
