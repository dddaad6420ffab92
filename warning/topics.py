"""Every Kafka topic, declared once. Names carry an optional prefix for isolation."""

from __future__ import annotations

from dataclasses import dataclass

OBSERVATIONS = "feeds.observations"
CAP = "feeds.cap"
REJECTED = "warning.rejected"
SIGNALS = "warning.signals"  # internal: evaluate -> lifecycle, keyed by alert key
ALERTS = "warning.alerts"
RECEIPTS = "warning.receipts"
ACKS = "warning.acks"
CONTROL = "warning.control"  # officers' commands, keyed by alert key: applied by the lifecycle agent
FANOUT = "warning.fanout"  # internal: work units of city-wide audiences, keyed by unit (pipeline/units.py)

ALL = (OBSERVATIONS, CAP, REJECTED, SIGNALS, ALERTS, RECEIPTS, ACKS, CONTROL, FANOUT)

# Faust's tables (changelog topics ``<app id>-<table>-changelog``, created by Faust).
STATION_WINDOWS = "station-windows"
ALERT_LIFECYCLE = "alert-lifecycle"
TABLES = (STATION_WINDOWS, ALERT_LIFECYCLE)


def changelog_topics(app_id: str) -> list[str]:
    """The topics Faust creates for an app's tables (its assignor's leader topic holds no data)."""
    return [f"{app_id}-{table}-changelog" for table in TABLES]


def replication_problems(found: dict[str, tuple[int, int]], replication_factor: int,
                         min_insync_replicas: int) -> list[str]:
    """What is wrong with existing topics' copies, given ``topic -> (fewest replicas of a
    partition, min.insync.replicas)``: each line names the topic, the setting and the fix."""
    problems = []
    for name, (replicas, min_isr) in sorted(found.items()):
        if replicas < replication_factor:
            problems.append(
                f"topic {name} has {replicas} replica(s) but WARNING_REPLICATION_FACTOR is {replication_factor}: "
                "add replicas with kafka-reassign-partitions.sh, or use a new WARNING_TOPIC_PREFIX")
        if min_isr < min_insync_replicas:
            problems.append(
                f"topic {name} has min.insync.replicas={min_isr} but WARNING_MIN_INSYNC_REPLICAS is "
                f"{min_insync_replicas}: kafka-configs.sh --alter --entity-type topics --entity-name {name} "
                f"--add-config min.insync.replicas={min_insync_replicas}")
    return problems


@dataclass(frozen=True)
class TopicNames:
    prefix: str = ""

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def observations(self) -> str:
        return self.name(OBSERVATIONS)

    @property
    def cap(self) -> str:
        return self.name(CAP)

    @property
    def rejected(self) -> str:
        return self.name(REJECTED)

    @property
    def signals(self) -> str:
        return self.name(SIGNALS)

    @property
    def alerts(self) -> str:
        return self.name(ALERTS)

    @property
    def receipts(self) -> str:
        return self.name(RECEIPTS)

    @property
    def acks(self) -> str:
        return self.name(ACKS)

    @property
    def control(self) -> str:
        return self.name(CONTROL)

    @property
    def fanout(self) -> str:
        return self.name(FANOUT)

    def all(self) -> list[str]:
        return [self.name(base) for base in ALL]
