"""What operators ask of Redis: the active alerts and one alert's status and reach."""

from __future__ import annotations

import time
from typing import Any

import orjson

from warning import reach
from warning.config import CHANNELS
from warning.store import DeliveryStore


async def active_alerts(store: DeliveryStore) -> list[dict[str, Any]]:
    ids = await store.alerts.active_ids(time.time())
    return [{k: v for k, v in found.as_dict().items() if k not in ("msg_type", "expires")}
            for found in await store.alerts.summaries(ids) if found is not None]


async def alert_status(store: DeliveryStore, alert_id: str) -> dict[str, Any] | None:
    record = await store.alerts.summary(alert_id)
    if record is None:
        return None
    redis, keys = store.redis, store.keys
    channels: dict[str, dict[str, int]] = {}
    for channel in CHANNELS:
        counts = await store.receipts.counts(alert_id, channel)
        if any(counts.values()):
            channels[channel] = {k: v for k, v in counts.items() if v}
    acks = sorted((orjson.loads(v) for v in (await redis.hgetall(keys.acks(alert_id))).values()),
                  key=lambda a: a["at"])
    knocks = sorted((orjson.loads(v) for v in (await redis.hgetall(keys.door_knocks(alert_id))).values()),
                    key=lambda t: t["at"])
    histogram = {int(k): int(v) for k, v in (await redis.hgetall(keys.reach(alert_id))).items()}
    p50, p90, p99 = reach.percentiles(histogram)
    return {
        **record.as_dict(), "channels": channels, "acks": acks,
        "reached": {ch: reached(counts) for ch, counts in channels.items()}, "door_knocks": knocks,
        "reach": {"p50_s": p50, "p90_s": p90, "p99_s": p99},
    }


def reached(counts: dict[str, int]) -> int:
    """Deliveries a provider took (sent) or confirmed (delivered)."""
    return counts.get("sent", 0) + counts.get("delivered", 0)
