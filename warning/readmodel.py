"""What operators ask of Redis: the active alerts and one alert's status and reach."""

from __future__ import annotations

import time
from typing import Any

import orjson
import redis.asyncio as aioredis

from warning import reach
from warning.config import CHANNELS
from warning.keys import Keys


async def active_alerts(redis: aioredis.Redis, keys: Keys) -> list[dict[str, Any]]:
    ids = await redis.zrangebyscore(keys.active_alerts, time.time(), "+inf")
    out = []
    for alert_id in map(str, ids):
        record = await redis.hgetall(keys.alert(alert_id))
        if record:
            out.append({"alert_id": alert_id, "hazard": record["hazard"], "area": record["area"],
                        "tier": record["tier"], "version": int(record["version"]),
                        "source": record.get("source", "rule"), "drill": record.get("drill") == "1",
                        "release": str(record.get("release") or "staff,residents").split(",")})
    return out


async def alert_status(redis: aioredis.Redis, keys: Keys, alert_id: str) -> dict[str, Any] | None:
    record = await redis.hgetall(keys.alert(alert_id))
    if not record:
        return None
    channels: dict[str, dict[str, int]] = {}
    for channel in CHANNELS:
        raw = await redis.hgetall(keys.delivery_counts(alert_id, channel))
        counts = {str(k): int(v) for k, v in raw.items()}
        if any(counts.values()):
            channels[channel] = {k: v for k, v in counts.items() if v}
    acks = sorted((orjson.loads(v) for v in (await redis.hgetall(keys.acks(alert_id))).values()),
                  key=lambda a: a["at"])
    knocks = sorted((orjson.loads(v) for v in (await redis.hgetall(keys.door_knocks(alert_id))).values()),
                    key=lambda t: t["at"])
    histogram = {int(k): int(v) for k, v in (await redis.hgetall(keys.reach(alert_id))).items()}
    p50, p90, p99 = reach.percentiles(histogram)
    return {
        "alert_id": alert_id, "hazard": record["hazard"], "area": record["area"], "tier": record["tier"],
        "version": int(record["version"]), "msg_type": record["msg_type"],
        "source": record.get("source", "rule"), "drill": record.get("drill") == "1",
        "release": str(record.get("release") or "staff,residents").split(","),
        "expires": float(record["expires"]), "channels": channels, "acks": acks,
        "reached": {ch: reached(counts) for ch, counts in channels.items()}, "door_knocks": knocks,
        "reach": {"p50_s": p50, "p90_s": p90, "p99_s": p99},
    }


def reached(counts: dict[str, int]) -> int:
    """Deliveries a provider took (sent) or confirmed (delivered)."""
    return counts.get("sent", 0) + counts.get("delivered", 0)
