"""Offline replay: the rule engine and lifecycle over a list of readings, no Kafka.

The live agents run the same pure functions, so this predicts what they will publish.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from warning.lifecycle import LifecycleConfig, LifecycleState, step
from warning.models import AlertVersion, Observation
from warning.rules.evaluate import EvalConfig, StationState, evaluate_station
from warning.rules.pack import RulePack
from warning.targeting.directory import Directory


def replay(pack: RulePack, directory: Directory, observations: Iterable[Observation],
           eval_config: EvalConfig | None = None,
           lifecycle_config: LifecycleConfig | None = None) -> Iterator[AlertVersion]:
    eval_config = eval_config or EvalConfig()
    lifecycle_config = lifecycle_config or LifecycleConfig()
    stations: dict[str, StationState] = {}
    alerts: dict[str, LifecycleState] = {}
    for obs in observations:
        state = stations.setdefault(obs.station_id, {})
        result = evaluate_station(pack, state, [obs], lambda o: directory.area_of_station(o.station_id),
                                  eval_config)
        now = obs.observed_at.timestamp()
        for key, alert_state in alerts.items():  # time passes for every alert, as ticks do live
            if key not in {s.alert_key for s in result.signals}:
                version = step(alert_state, None, now, lifecycle_config, wall=obs.observed_at)
                if version is not None:
                    yield version
        for signal in result.signals:
            version = step(alerts.setdefault(signal.alert_key, {}), signal, now, lifecycle_config,
                           wall=datetime.fromtimestamp(now, UTC))
            if version is not None:
                yield version
