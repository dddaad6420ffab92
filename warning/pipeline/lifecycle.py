"""Stage 3, lifecycle: tier signals per hazard + area -> alert versions on warning.alerts.

A timer sends ticks through the same topic, so time-driven changes (a downgrade after
the hold time, expiry) happen inside stream iteration, where Faust tables can be written.
"""

from __future__ import annotations

import time

import faust
import orjson
import structlog
from pydantic import ValidationError

from warning.bootstrap import Container
from warning.lifecycle import is_active, step
from warning.models import TierSignal
from warning.pipeline.common import raw_topic, reject

log = structlog.get_logger()
TICK_EVERY_S = 10.0


def register(app: faust.App, c: Container) -> None:
    signals = raw_topic(app, c.topics.signals)
    alerts = raw_topic(app, c.topics.alerts)
    rejected = raw_topic(app, c.topics.rejected)
    table = app.Table("alert-lifecycle", default=dict, partitions=app.conf.topic_partitions)

    @app.agent(signals, name="lifecycle")
    async def lifecycle(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            key, raw = event.key, event.value
            try:
                message = orjson.loads(raw)
                if "tick" in message:
                    signal, now = None, float(message["tick"])
                else:
                    signal = TierSignal.model_validate(message)
                    now = signal.at.timestamp()
            except (orjson.JSONDecodeError, ValidationError, TypeError, ValueError) as exc:
                await reject(rejected, "lifecycle", f"bad signal: {exc}", c.topics.signals, key, raw)
                continue
            alert_key = key.decode() if key else ""
            state = dict(table[alert_key])
            if signal is None and not state:
                continue
            version = step(state, signal, now, c.lifecycle_config)
            table[alert_key] = state
            if version is not None:
                log.info("alert_version", alert_id=version.alert_id, tier=version.tier.value,
                         version=version.version, msg_type=version.msg_type)
                await alerts.send(key=version.key.encode(), value=version.model_dump_json().encode())

    @app.timer(TICK_EVERY_S)
    async def tick() -> None:
        now = time.time()
        for alert_key, state in list(table.items()):
            if is_active(state):  # time alone can change it (held downgrade, expiry)
                await signals.send(key=alert_key.encode(), value=orjson.dumps({"tick": now}))
