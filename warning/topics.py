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

ALL = (OBSERVATIONS, CAP, REJECTED, SIGNALS, ALERTS, RECEIPTS, ACKS, CONTROL)


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

    def all(self) -> list[str]:
        return [self.name(base) for base in ALL]
