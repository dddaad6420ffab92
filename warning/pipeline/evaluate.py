"""Stages 1-2, ingest + evaluate: observations -> per-station window state -> tier signals.

One pass of pure code per message (a message may carry a batch of readings of one
partition's stations); the message's signals go out as one record per partition they
belong to (signal_records.py). Window state goes to its changelog-backed table through a
write-back cache (writeback.py): written once per flush (after ``evaluate_flush_events``
messages of a partition, and by a timer at least every ``evaluate_flush_s`` seconds) on
a producer of its own, and the messages it covers acknowledged once Kafka has it. A busy
station costs one changelog write per flush instead of one per reading.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import faust
import structlog
from faust.types import TP

from warning.bootstrap import Container
from warning.ingest import parse_observations
from warning.models import Observation, TierSignal
from warning.pipeline import signal_records
from warning.pipeline.common import changelog_configs, raw_topic, reject
from warning.pipeline.produce import DirectProducer, own_connection
from warning.pipeline.writeback import WriteBack
from warning.rules.evaluate import evaluate_station
from warning.topics import STATION_WINDOWS

log = structlog.get_logger()

# A rebalance waits this long at most for windows already handed to Kafka, so the
# partition's next owner recovers them instead of replaying the readings they cover.
SETTLE_ON_REVOKE_S = 2.0


def register(app: faust.App, c: Container) -> None:
    observations = raw_topic(app, c.topics.observations)
    rejected = raw_topic(app, c.topics.rejected)
    stations = app.Table(STATION_WINDOWS, default=dict, partitions=app.conf.topic_partitions,
                         extra_topic_configs=changelog_configs(c.settings))
    direct = DirectProducer(app.producer)
    windows = DirectProducer(own_connection(app))
    cache = WriteBack(lambda partition, station_id, window: windows.changelog(stations, partition, station_id, window),
                      app.crash)

    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        cache.forget(args[0] if args else ())
        await cache.settle(SETTLE_ON_REVOKE_S)

    app.on_partitions_revoked.connect(on_revoked)

    async def flush(tp: TP) -> None:
        for station_id, window in cache.dirty[tp].items():
            stations.data[station_id] = window  # the store, without a second changelog record
        await cache.flush(tp)

    flush_s = c.settings.evaluate_flush_s

    @app.timer(flush_s / 2)
    async def flush_quiet_partitions() -> None:
        for tp in cache.due(flush_s):
            await flush(tp)

    @app.agent(observations, name="evaluate")
    async def evaluate(stream: faust.StreamT[bytes]) -> None:
        manual: Any = stream  # Stream.noack() is not on the StreamT protocol
        async for event in manual.noack().events():
            c.pulse.took_work()
            tp = event.message.tp
            key, raw = event.key, event.value
            parsed = parse_observations(raw)
            for payload, reason in parsed.refused:
                await reject(rejected, "ingest", reason, c.topics.observations, key, payload)
            by_station: dict[str, list[Observation]] = defaultdict(list)
            for obs in parsed.observations:
                by_station[obs.station_id].append(obs)
            dirty = cache.dirty[tp]
            emitted: list[TierSignal] = []
            for station_id, readings in by_station.items():
                state = dirty.get(station_id)
                if state is None:
                    state = dirty[station_id] = stations[station_id]  # the stored window, or a new one
                result = evaluate_station(c.pack, state, readings, c.area_of, c.eval_config)
                for obs, reason in result.late:
                    await reject(rejected, "evaluate", reason, c.topics.observations, key,
                                 obs.model_dump_json().encode())
                for signal in result.signals:
                    log.info("tier_signal", station_id=station_id, hazard=signal.hazard,
                             area=signal.area, tier=signal.tier.value)
                emitted += result.signals
            for partition, signal_key, value in signal_records.by_partition(emitted, app.conf.topic_partitions):
                await direct.send(c.topics.signals, signal_key, value, partition)
            cache.pending[tp].append(event)
            if len(cache.pending[tp]) >= c.settings.evaluate_flush_events:
                await flush(tp)
