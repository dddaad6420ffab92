"""In-memory fakes of the delivery store's repositories (warning/store/), the Cosmic Python
way: the same methods and the same answers, state in dicts. tests/integration/
test_store_contract.py runs one set of tests against each fake and its Redis original
(the escalation timers' and the directory's fakes are in escalation.py and directory.py),
so a fake that drifts from the real repository fails there.

Only what a caller can do without a Redis pipeline is faked (the ``stage_*`` methods
exist to share a caller's round trip, which a fake has none of)."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from warning.models import AlertVersion, DeliveryJob, Tier
from warning.store.alerts import _SUMMARY, AlertSummary, latest_version, shared_fields
from warning.store.queue import TIERS, Claimed

_BY_RANK = {tier.rank: tier for tier in Tier}


class FakeAlertRecords:
    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, str]] = {}
        self.active: dict[str, float] = {}

    async def record_alert(self, alert: AlertVersion) -> Tier | None:
        return (await self.record_alerts([alert]))[0]

    async def record_alerts(self, alerts: Sequence[AlertVersion]) -> list[Tier | None]:
        recorded: list[Tier | None] = []
        for alert in alerts:
            record = self.hashes.setdefault(alert.alert_id, {})
            if alert.version < int(record.get("version", 0)):
                recorded.append(None)
                continue
            rank = max(int(record.get("max_rank", 0)), alert.tier.rank)
            as_json = alert.model_dump_json()
            record.update({k: str(v) for k, v in {
                "alert_id": alert.alert_id, "key": alert.key, "hazard": alert.hazard, "area": alert.area,
                "tier": alert.tier.value, "version": alert.version, "msg_type": alert.msg_type,
                "expires": alert.expires.timestamp(), "issued_at": alert.issued_at.timestamp(),
                "cause": alert.cause, "identifier": alert.identifier, "version_json": as_json,
                f"version_json:{alert.version}": as_json, "source": alert.source, "drill": int(alert.drill),
                "release": ",".join(alert.release), "max_rank": rank}.items()})
            self.active[alert.alert_id] = (alert.issued_at if alert.msg_type == "Cancel" else alert.expires).timestamp()
            recorded.append(_BY_RANK[rank])
        return recorded

    def stage_texts(self, pipe: Any, alert: AlertVersion, texts: dict[str, str]) -> None:
        v = alert.version
        self.hashes.setdefault(alert.alert_id, {}).update({
            f"msg_type:{v}": alert.msg_type, f"expires:{v}": str(alert.expires.timestamp()),
            f"issued_at:{v}": str(alert.issued_at.timestamp()),
            **{f"text:{v}:{language}": text for language, text in texts.items()}})

    async def summary(self, alert_id: str) -> AlertSummary | None:
        return (await self.summaries([alert_id]))[0]

    async def summaries(self, alert_ids: Sequence[str]) -> list[AlertSummary | None]:
        return [AlertSummary.from_values(a, [self.hashes.get(a, {}).get(f) for f in _SUMMARY]) for a in alert_ids]

    async def active_ids(self, since: float) -> list[str]:
        return [a for a, score in sorted(self.active.items(), key=lambda kv: (kv[1], kv[0])) if score >= since]

    async def latest_json(self, alert_id: str) -> str | None:
        return self.hashes.get(alert_id, {}).get("version_json")

    async def latest(self, alert_id: str) -> AlertVersion | None:
        raw = await self.latest_json(alert_id)
        return AlertVersion.model_validate_json(raw) if raw else None

    async def latest_jsons(self, alert_ids: Sequence[str]) -> list[str | None]:
        return [await self.latest_json(a) for a in alert_ids]

    async def versions(self, alert_id: str, upto: int) -> list[dict[str, Any]]:
        record = self.hashes.get(alert_id, {})
        return [orjson.loads(record[f"version_json:{v}"]) for v in range(1, upto + 1) if f"version_json:{v}" in record]

    async def records_for(self, stubs: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {a: dict(self.hashes.get(a, {})) for a in sorted({stub["alert_id"] for stub in stubs})}

    async def current_versions(self, alert_ids: Iterable[str]) -> dict[str, int]:
        return {a: int(self.hashes.get(a, {}).get("version", 0)) for a in sorted(set(alert_ids))}


@dataclass
class _Entry:
    entry_id: str
    fields: dict[str, Any]  # the job (or stub) as queued
    consumer: str | None = None
    delivered_at: float = 0.0


@dataclass
class _Counts:
    """The per-alert, per-channel counts both the queue (targeted, queued) and the receipts move."""

    by_alert: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)

    def of(self, alert_id: str, channel: str) -> Counter[str]:
        return self.by_alert.setdefault((alert_id, channel), Counter())


class FakeDeliveryQueue:
    def __init__(self, alerts: FakeAlertRecords, counts: _Counts) -> None:
        self.alerts = alerts
        self.counts = counts
        self.lanes: dict[tuple[str, str], list[_Entry]] = {}  # (channel, tier) -> entries, oldest first
        self.enqueued: set[tuple[str, int, str, str]] = set()
        self.delayed_jobs: dict[str, list[tuple[float, str, dict[str, Any]]]] = {}
        self.dead: dict[str, list[dict[str, Any]]] = {}
        self._ids = itertools.count(1)

    async def enqueue(self, jobs: Sequence[DeliveryJob], batch: int = 2000) -> int:
        return await self.enqueue_raw([job.model_dump(mode="json") for job in jobs], batch)

    async def enqueue_raw(self, jobs: Sequence[dict[str, Any]], batch: int = 2000,
                          expires: float | None = None) -> int:
        added = 0
        for job in jobs:
            identity = (job["alert_id"], int(job["version"]), job["channel"], job["recipient"])
            if identity in self.enqueued:
                continue
            self.enqueued.add(identity)
            self._append(job["channel"], Tier(job["tier"]).value, job)
            self.counts.of(job["alert_id"], job["channel"]).update({"queued": 1, "targeted": 1})
            added += 1
        return added

    async def enqueue_stubs(self, alert_id: str, version: int, tier: Tier, stubs: Sequence[bytes],
                            batch: int, expires: float) -> int:
        jobs = []
        for stub in stubs:
            channel, recipient, fields = stub.split(b"\t", 2)
            jobs.append({"alert_id": alert_id, "version": version, "tier": tier.value, "channel": channel.decode(),
                         "recipient": recipient.decode(), **orjson.loads(fields)})
        return await self.enqueue_raw(jobs, batch, expires)

    def _append(self, channel: str, tier: str, job: dict[str, Any]) -> None:
        entry_id = f"{int(time.time() * 1000)}-{next(self._ids)}"
        self.lanes.setdefault((channel, tier), []).append(_Entry(entry_id, job))

    async def ensure_group(self, channel: str) -> None:
        return None

    async def _claimed(self, channel: str, tier: str, entries: list[_Entry]) -> list[Claimed]:
        records = await self.alerts.records_for(e.fields for e in entries if "text" not in e.fields)
        claimed = []
        for e in entries:
            stub, latest = e.fields, None
            if "text" not in stub:
                record = records.get(stub["alert_id"], {})
                latest = latest_version(record)
                stub = {**shared_fields(record, stub), **stub}
            claimed.append(Claimed(f"{channel}:{tier}", e.entry_id, DeliveryJob.model_validate(stub), latest))
        return claimed

    async def read(self, channel: str, consumer: str, count: int, block_ms: int) -> list[Claimed]:
        claimed: list[Claimed] = []
        for tier in TIERS:
            fresh = [e for e in self.lanes.get((channel, tier.value), []) if e.consumer is None][:count - len(claimed)]
            for e in fresh:
                e.consumer, e.delivered_at = consumer, time.monotonic()
            claimed += await self._claimed(channel, tier.value, fresh)
        return claimed

    async def reclaim(self, channel: str, consumer: str, min_idle_ms: int, count: int) -> list[Claimed]:
        claimed: list[Claimed] = []
        now = time.monotonic()
        for tier in TIERS:
            idle = [e for e in self.lanes.get((channel, tier.value), [])
                    if e.consumer is not None and (now - e.delivered_at) * 1000 >= min_idle_ms][:count]
            for e in idle:
                e.consumer, e.delivered_at = consumer, now
            claimed += await self._claimed(channel, tier.value, idle)
        return claimed

    async def ack_entries(self, channel: str, claimed: Sequence[Claimed]) -> None:
        done = {c.entry_id for c in claimed}
        for (lane_channel, tier), entries in self.lanes.items():
            if lane_channel == channel:
                self.lanes[(lane_channel, tier)] = [e for e in entries if e.entry_id not in done]

    async def dead_letter(self, items: Sequence[Claimed], reason: str) -> None:
        for item in items:
            self.dead.setdefault(item.job.channel, []).append({"job": item.job.model_dump(mode="json"),
                                                               "reason": reason})

    async def retry_later(self, jobs: Sequence[tuple[DeliveryJob, float]]) -> None:
        for job, due in jobs:
            retry = job.model_copy(update={"attempt": job.attempt + 1})
            self.delayed_jobs.setdefault(job.channel, []).append((due, retry.tier.value, retry.model_dump(mode="json")))

    async def promote_due(self, channel: str, now: float, limit: int = 1000) -> int:
        waiting = sorted(self.delayed_jobs.get(channel, []), key=lambda d: d[0])
        due = [d for d in waiting if d[0] <= now][:limit]
        for _, tier, job in due:
            self._append(channel, tier, job)
        self.delayed_jobs[channel] = [d for d in waiting if d not in due]
        return len(due)

    async def delayed(self, channel: str) -> int:
        return len(self.delayed_jobs.get(channel, []))

    async def queue_stats(self, channel: str) -> dict[str, Any]:
        now = time.time()
        lanes = {}
        for tier in TIERS[:-1]:
            entries = self.lanes.get((channel, tier.value), [])
            oldest = now - int(entries[0].entry_id.split("-")[0]) / 1000 if entries else 0.0
            lanes[tier.value] = {"depth": len(entries), "pending": sum(1 for e in entries if e.consumer),
                                 "oldest_age_s": round(oldest, 3)}
        return {"channel": channel, "lanes": lanes, "delayed": await self.delayed(channel),
                "dead": len(self.dead.get(channel, []))}


class FakeDeliveryReceipts:
    def __init__(self, counts: _Counts) -> None:
        self.counts_of = counts
        self.deliveries: dict[str, dict[str, str]] = {}
        self.awaiting: dict[str, dict[str, tuple[float, str]]] = {}  # channel -> id -> (due, job json)

    async def statuses(self, jobs: Sequence[DeliveryJob]) -> list[str | None]:
        return await self.statuses_of([job.delivery_id for job in jobs])

    async def statuses_of(self, delivery_ids: Sequence[str]) -> list[str | None]:
        return [self.deliveries.get(d, {}).get("status") for d in delivery_ids]

    async def counts(self, alert_id: str, channel: str) -> dict[str, int]:
        return dict(self.counts_of.of(alert_id, channel))

    async def transition(self, jobs: Sequence[DeliveryJob], new: str, reason: str = "") -> None:
        now = time.time()
        for job in jobs:
            record = self.deliveries.setdefault(job.delivery_id, {})
            old = record.get("status")
            if new == "sent" and old in ("delivered", "undelivered", "failed", "unconfirmed"):
                record["sent_at"] = str(now)
            elif old != new:
                record.update({"status": new, f"{new}_at": str(now), "reason": reason, "attempt": str(job.attempt)})
                self.counts_of.of(job.alert_id, job.channel).update({old or "queued": -1, new: 1})

    async def await_receipt(self, jobs: Sequence[DeliveryJob], due: float) -> None:
        for job in jobs:
            self.awaiting.setdefault(job.channel, {})[job.delivery_id] = (due, job.model_dump_json())

    async def settle(self, channel: str, delivery_id: str) -> DeliveryJob | None:
        return (await self.settle_many(channel, [delivery_id]))[0]

    async def settle_many(self, channel: str, delivery_ids: Sequence[str]) -> list[DeliveryJob | None]:
        waiting = self.awaiting.setdefault(channel, {})
        found = [waiting.pop(d, None) for d in delivery_ids]
        return [DeliveryJob.model_validate_json(f[1]) if f else None for f in found]

    async def overdue(self, channel: str, now: float, limit: int = 500) -> list[DeliveryJob]:
        waiting = self.awaiting.setdefault(channel, {})
        late = sorted((due, d) for d, (due, _) in waiting.items() if due <= now)[:limit]
        return [DeliveryJob.model_validate_json(waiting.pop(d)[1]) for _, d in late]


class FakeRateBuckets:
    def __init__(self) -> None:
        self.buckets: dict[str, tuple[float, float]] = {}  # sender -> (tokens, at)

    async def take_tokens(self, sender: str, want: int, rate: float, burst: float) -> tuple[int, float]:
        now = time.time()
        tokens, at = self.buckets.get(sender, (burst, now))
        tokens = min(burst, tokens + max(0.0, now - at) * rate)
        granted = min(want, int(tokens))
        tokens -= granted
        self.buckets[sender] = (tokens, now)
        wait = (min(want - granted, burst) - tokens) / rate if granted < want else 0.0
        return granted, wait


@dataclass
class FakeStore:
    """The four fakes wired as DeliveryStore wires the real ones (queue and receipts share
    the per-alert counts, as they share the counts hashes in Redis)."""

    alerts: FakeAlertRecords
    queue: FakeDeliveryQueue
    receipts: FakeDeliveryReceipts
    rates: FakeRateBuckets

    @classmethod
    def create(cls) -> FakeStore:
        alerts, counts = FakeAlertRecords(), _Counts()
        return cls(alerts, FakeDeliveryQueue(alerts, counts), FakeDeliveryReceipts(counts), FakeRateBuckets())

