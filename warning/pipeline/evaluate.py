"""Stage 1-2, ingest + evaluate: observations -> per-station window state -> tier signals.

One pass of pure code per message (a message may carry a batch of readings of one
partition's stations) and one table write per station.
"""

from __future__ import annotations

from collections import defaultdict

import faust
import structlog

from warning.bootstrap import Container
from warning.ingest import parse_observations
from warning.models import Observation
from warning.pipeline.common import raw_topic, reject
from warning.rules.evaluate import evaluate_station

log = structlog.get_logger()


def register(app: faust.App, c: Container) -> None:
    observations = raw_topic(app, c.topics.observations)
    signals = raw_topic(app, c.topics.signals)
    rejected = raw_topic(app, c.topics.rejected)
    stations = app.Table("station-windows", default=dict, partitions=app.conf.topic_partitions)

    def area_of(obs: Observation) -> str:
        return c.directory.area_of_station(obs.station_id)

    @app.agent(observations, name="evaluate")
    async def evaluate(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            key, raw = event.key, event.value
            parsed = parse_observations(raw)
            for payload, reason in parsed.refused:
                await reject(rejected, "ingest", reason, c.topics.observations, key, payload)
            by_station: dict[str, list[Observation]] = defaultdict(list)
            for obs in parsed.observations:
                by_station[obs.station_id].append(obs)
            for station_id, readings in by_station.items():
                state = dict(stations[station_id])
                result = evaluate_station(c.pack, state, readings, area_of, c.eval_config)
                stations[station_id] = state
                for obs, reason in result.late:
                    await reject(rejected, "evaluate", reason, c.topics.observations, key,
                                 obs.model_dump_json().encode())
                for signal in result.signals:
                    log.info("tier_signal", station_id=station_id, hazard=signal.hazard,
                             area=signal.area, tier=signal.tier.value)
                    await signals.send(key=signal.alert_key.encode(), value=signal.model_dump_json().encode())
