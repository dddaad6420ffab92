"""Every Lua script and MULTI touches one Redis Cluster hash slot (no server needed).

The repositories run against a client that records each script call's KEYS and each
transaction's keys; ``key_slot`` (redis-py's, as the cluster computes it) must give one
slot per call — with several shard lanes, several alerts and channels in one batch.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any, Literal

import pytest
from redis.crc import key_slot

from warning.control.silences import SilenceStore
from warning.keys import Keys
from warning.models import AlertVersion, DeliveryJob, Tier
from warning.response.escalation import EscalationTimers, stop_chain
from warning.store import DeliveryStore
from warning.store.scripts import lua


class Recorder:
    """A client (and its pipelines) that answers every command and remembers the keys."""

    def __init__(self, replies: dict[str, Any] | None = None) -> None:
        self.calls: list[tuple[str, list[str]]] = []  # (script source or "MULTI", keys)
        self.replies = replies or {}
        self._multi: list[str] | None = None
        self.staged = 0  # commands in this pipeline: execute() answers each

    def register_script(self, source: str) -> Any:
        async def run(keys: list[str], args: list[Any], client: Any = None) -> Any:
            self.calls.append((source, list(keys)))
            if client is not None:
                client.staged += 1
            return self.replies.get(source, 0)
        return run

    def pipeline(self, transaction: bool = True) -> Recorder:
        pipe = Recorder(self.replies)
        pipe.calls = self.calls
        pipe._multi = [] if transaction else None
        return pipe

    async def __aenter__(self) -> Recorder:
        return self

    async def __aexit__(self, *exc: object) -> bool:
        return False

    async def execute(self) -> list[Any]:
        if self._multi:
            self.calls.append(("MULTI", self._multi))
            self._multi = []
        staged, self.staged = self.staged, 0
        return [0] * staged

    def __getattr__(self, command: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.staged += 1
            if self._multi is not None and args:
                self._multi.append(str(args[0]))
            return _Reply(self.replies.get(command))
        return call


class _Reply:
    """What a command returns: awaitable (the client) or ignored (a pipeline)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, Any]:
        yield from ()
        return self.value


def alert(alert_id: str, msg_type: Literal["Alert", "Cancel"] = "Alert") -> AlertVersion:
    now = datetime(2026, 7, 1, tzinfo=UTC)
    return AlertVersion(alert_id=alert_id, key=f"k-{alert_id}", version=2, hazard="rainstorm", area="440305",
                        tier=Tier.red, msg_type=msg_type, issued_at=now, expires=now + timedelta(hours=3),
                        cause="test", caused_at=now)


def job(n: int, channel: str = "sms", alert_id: str = "a1") -> DeliveryJob:
    return DeliveryJob(alert_id=alert_id, version=2, tier=Tier.red, msg_type="Alert", channel=channel,
                       recipient=f"res-{n}", address="+8613800000000", text="t", expires=2e9, issued_at=1.8e9)


def one_slot(calls: list[tuple[str, list[str]]]) -> None:
    assert calls
    for source, keys in calls:
        slots = {key_slot(k.encode()) for k in keys}
        assert len(slots) == 1, f"keys in {len(slots)} slots: {keys} ({source[:60]!r})"


@pytest.mark.parametrize("shards", [1, 8])
async def test_every_script_and_multi_stays_in_one_slot(shards: int) -> None:
    keys = Keys("p", shards=shards)
    jobs = [job(n, ch, a) for n in range(40) for ch in ("sms", "push") for a in ("a1", "a2")]
    recorder = Recorder({"zrangebyscore": ["a1", "a2"], lua("overdue"): [], lua("take_tokens"): [1, "0"]})
    store = DeliveryStore.create(recorder, keys)  # type: ignore[arg-type]
    await store.alerts.record_alerts([alert("a1"), alert("a2", "Cancel")])
    await store.queue.enqueue(jobs, batch=7)
    stubs = [b"sms\tres-%d\t{\"address\":\"+86138\"}" % n for n in range(40)]
    await store.queue.enqueue_stubs("a1", 2, Tier.red, stubs, batch=9, expires=2e9)
    await store.queue.promote_due("sms", 2e9)
    await store.receipts.transition(jobs, "sent")
    await store.receipts.await_receipt(jobs[:3], 2e9)
    await store.receipts.settle_many("sms", [j.delivery_id for j in jobs[:3]])
    await store.receipts.overdue("sms", 2e9)
    await store.rates.take_tokens("sms", 10, 5.0, 10.0)
    timers = EscalationTimers(recorder, keys, ["township", "district", "city"], {"red": 60})  # type: ignore[arg-type]
    await timers.on_versions([alert("a3")], now=1.8e9)
    await timers.fire_due(2e9)
    await stop_chain(recorder, keys, "a3", "acknowledged")  # type: ignore[arg-type]
    await SilenceStore(recorder, keys).save(_Silence())  # type: ignore[arg-type]
    one_slot(recorder.calls)
    ran = {source for source, _ in recorder.calls}
    shipped = {lua(f.name[:-4], pkg) for pkg in ("warning.store", "warning.response")
               for f in resources.files(pkg).iterdir() if f.name.endswith(".lua")}
    assert shipped <= ran, "a .lua script this test does not run"
    assert "MULTI" in ran


class _Silence:
    silence_id = "s1"

    def model_dump_json(self) -> str:
        return "{}"


def test_a_roles_heartbeats_share_one_slot_for_the_mget_that_reads_them() -> None:
    keys = Keys("t")
    for role in ("worker", "consumer", "api"):
        slots = {key_slot(k.encode()) for k in
                 [keys.heartbeats(role), *(keys.heartbeat_info(role, f"host-{n}") for n in range(20))]}
        assert len(slots) == 1, role
