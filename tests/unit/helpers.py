from __future__ import annotations

from datetime import UTC, datetime, timedelta

from warning.models import Observation

T0 = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)


def obs(station: str = "S1", kind: str = "rainfall", value: float = 0.0, minutes: float = 0,
        **extra: object) -> Observation:
    return Observation(station_id=station, kind=kind, value=value, unit="mm",
                       observed_at=T0 + timedelta(minutes=minutes), **extra)  # type: ignore[arg-type]
