"""Watching warning.alerts from outside the pipeline: when did each area's alert arrive."""

from __future__ import annotations

import threading
import time

import orjson
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.errors import CoordinatorLoadInProgressError, CoordinatorNotAvailableError


class AlertWatcher:
    """Background consumer of warning.alerts recording first arrival time per area."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="latest",
                                       group_id=None, fetch_max_wait_ms=5)
        self.arrived: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> AlertWatcher:
        # Wait until partitions are assigned and positioned, or early alerts are missed.
        while not self._consumer.assignment():
            self._consumer.poll(timeout_ms=100)
        for tp in self._consumer.assignment():
            self._consumer.position(tp)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            for batch in self._consumer.poll(timeout_ms=50).values():
                now = time.time()
                for record in batch:
                    area = orjson.loads(record.value)["area"]
                    self.arrived.setdefault(area, now)

    def wait_for(self, areas: set[str], timeout: float) -> float:
        """The arrival time of the last of ``areas``; TimeoutError with what is missing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if areas <= self.arrived.keys():
                return max(self.arrived[a] for a in areas)
            time.sleep(0.005)
        missing = sorted(areas - self.arrived.keys())
        raise TimeoutError(f"{len(missing)} alerts never arrived, e.g. {missing[:3]}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._consumer.close()


def stable_members(bootstrap: str, group: str) -> int:
    """Members of a consumer group that has finished rebalancing (0 while it rebalances, and
    while a new broker is still creating the offsets topic that coordinates groups)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="warning-bench")
    try:
        try:
            described = admin.describe_groups([group]).get(group, {})
        except (CoordinatorNotAvailableError, CoordinatorLoadInProgressError):
            return 0
        return len(described.get("members", [])) if described.get("group_state") == "Stable" else 0
    finally:
        admin.close()
