"""Redis-backed delivery queues, alert records, receipts and reach (arq-style, Lua-atomic).

Fan-out calls :meth:`DeliveryStore.record_alert` then :meth:`enqueue`; channel workers
call :meth:`read`, :meth:`reclaim` and :meth:`finish`. Enqueue cannot create a
duplicate: a set per alert version remembers every ``channel:recipient`` already queued,
checked and written in the same script as the XADD.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
import structlog
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from warning import queue_scripts as lua
from warning import reach
from warning.delivery.batches import lanes, ramp
from warning.delivery.cell_broadcast import CHANNEL as BROADCAST
from warning.keys import Keys
from warning.models import WARNING_TIERS, AlertVersion, DeliveryJob, Tier, is_drill

# Statuses after the provider took the message: such a job is never handed over again.
HANDED_OFF = frozenset({"sent", "delivered", "undelivered", "failed", "unconfirmed"})

RETENTION_S = 7 * 86400  # alert records and receipts outlive the alert by a week
PIPELINE_BATCHES = 10  # enqueue batches per round trip: bounded, or a million jobs jam the socket
_BY_RANK = {tier.rank: tier for tier in Tier}
log = structlog.get_logger()


@dataclass(frozen=True)
class Claimed:
    stream: str
    entry_id: str
    job: DeliveryJob
    latest: int | None = None  # the alert's current version, read with the job (None: not read)


class DeliveryStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys, wait_replicas: int = 0, wait_timeout_ms: int = 100) -> None:
        self.redis = redis
        self.keys = keys
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self._enqueue = redis.register_script(lua.ENQUEUE)
        self._record = redis.register_script(lua.RECORD_ALERT)
        self._promote = redis.register_script(lua.PROMOTE)
        self._take = redis.register_script(lua.TAKE_TOKENS)
        self._mark = redis.register_script(lua.MARK)
        self._overdue = redis.register_script(lua.OVERDUE)
        self._settle = redis.register_script(lua.SETTLE)

    # --- fan-out side -----------------------------------------------------------------

    async def record_alert(self, alert: AlertVersion) -> Tier | None:
        """Store the alert's latest version; the loudest tier it had, or None if stale."""
        return (await self.record_alerts([alert]))[0]

    async def record_alerts(self, alerts: Sequence[AlertVersion]) -> list[Tier | None]:
        """:meth:`record_alert` for a batch, applied in order, in one round trip."""
        if not alerts:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            await self.stage_records(pipe, alerts)
            return self.recorded(await pipe.execute())

    async def stage_records(self, pipe: Pipeline, alerts: Sequence[AlertVersion]) -> None:
        """:meth:`record_alerts` as script calls in a caller's pipeline, one reply per alert
        (read with :meth:`recorded`)."""
        for alert in alerts:
            expires = alert.expires.timestamp()
            as_json = alert.model_dump_json()
            fields = {
                "alert_id": alert.alert_id, "key": alert.key, "hazard": alert.hazard, "area": alert.area,
                "tier": alert.tier.value, "version": alert.version, "msg_type": alert.msg_type,
                "expires": expires, "issued_at": alert.issued_at.timestamp(), "cause": alert.cause,
                "identifier": alert.identifier, "version_json": as_json, f"version_json:{alert.version}": as_json,
                "source": alert.source, "drill": int(alert.drill), "release": ",".join(alert.release),
            }
            flat = [str(x) for pair in fields.items() for x in pair]
            ttl = int(max(expires - time.time(), 0) + RETENTION_S)
            await self._record(keys=[self.keys.alert(alert.alert_id), self.keys.active_alerts],
                               args=[alert.version, alert.tier.rank, expires, alert.alert_id, alert.msg_type,
                                     ttl, alert.issued_at.timestamp(), *flat], client=pipe)

    @staticmethod
    def recorded(ranks: Sequence[Any]) -> list[Tier | None]:
        """Each recorded alert's loudest tier so far, or None where the version was stale."""
        return [None if int(rank) < 0 else _BY_RANK[int(rank)] for rank in ranks]

    def stage_wait(self, pipe: Pipeline) -> bool:
        """WAIT, at the end of a pipeline whose writes must outlive a failover (enqueues, the
        *sending* and *sent* marks), for ``wait_replicas`` replicas; whether it was staged (its
        reply is then the pipeline's last: pass it to :meth:`check_replicated`)."""
        if self.wait_replicas:
            pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms)
        return bool(self.wait_replicas)

    def check_replicated(self, replicas: Any, what: str) -> None:
        """Fewer replicas than asked within the timeout: written and kept, but exposed to a failover."""
        if int(replicas) < self.wait_replicas:
            log.warning("redis_write_not_replicated", what=what, replicas=int(replicas), wanted=self.wait_replicas,
                        timeout_ms=self.wait_timeout_ms)

    def stage_texts(self, pipe: Pipeline, alert: AlertVersion, texts: dict[str, str]) -> None:
        """What every job of a version shares, kept once in the alert record (not per job),
        as one command of a caller's pipeline."""
        v = alert.version
        pipe.hset(self.keys.alert(alert.alert_id), mapping={
            f"msg_type:{v}": alert.msg_type, f"expires:{v}": alert.expires.timestamp(),
            f"issued_at:{v}": alert.issued_at.timestamp(),
            **{f"text:{v}:{language}": text for language, text in texts.items()}})

    async def stage_enqueue(self, pipe: Pipeline, jobs: Sequence[dict[str, Any]], batch: int,
                            expires: float | None = None) -> int:
        """:meth:`enqueue_raw` for a few jobs, as script calls in a caller's pipeline (each
        returns how many of its jobs were new); returns how many calls it added."""
        calls = 0
        for (alert_id, version, channel, tier), (lines, lane_expires) in lanes(jobs, expires).items():
            keys = self._enqueue_keys(alert_id, version, channel, Tier(tier))
            ttl = int(max((lane_expires or 0) - time.time(), 0) + RETENTION_S)
            for at in range(0, len(lines), batch):
                await self._enqueue(keys=keys, args=[ttl, b"\n".join(lines[at:at + batch])], client=pipe)
                calls += 1
        return calls

    async def enqueue(self, jobs: Sequence[DeliveryJob], batch: int = 2000) -> int:
        """Queue jobs in the tier's lane; returns how many were new (replays add zero)."""
        return await self.enqueue_raw([job.model_dump(mode="json") for job in jobs], batch)

    async def enqueue_raw(self, jobs: Sequence[dict[str, Any]], batch: int = 2000,
                          expires: float | None = None) -> int:
        """:meth:`enqueue` for jobs in their JSON shape: DeliveryJob's fields, or a stub whose
        shared fields are in the alert record (:meth:`stage_texts`) — then pass ``expires``."""
        added = 0
        for (alert_id, version, channel, tier), (lines, lane_expires) in lanes(jobs, expires).items():
            added += await self._enqueue_lines(alert_id, version, channel, Tier(tier), lines, lane_expires, batch)
        return added

    async def enqueue_stubs(self, alert_id: str, version: int, tier: Tier, stubs: Sequence[bytes],
                            batch: int, expires: float) -> int:
        """Queue residents from their prepared stubs (``channel TAB id TAB fields``), spliced
        into job JSON without decoding them."""
        by_channel: dict[bytes, list[bytes]] = {}
        for stub in stubs:
            channel, recipient, fields = stub.split(b"\t", 2)
            head = by_channel.setdefault(channel, [])
            head.append(channel + b":" + recipient + b"\t" + fields)
        added = 0
        for channel, partial in by_channel.items():
            common = orjson.dumps({"alert_id": alert_id, "version": version, "tier": tier.value,
                                   "channel": channel.decode()})[:-1] + b","
            lines = [line.replace(b"\t{", b"\t" + common, 1) for line in partial]
            added += await self._enqueue_lines(alert_id, version, channel.decode(), tier, lines, expires, batch)
        return added

    async def _enqueue_lines(self, alert_id: str, version: int, channel: str, tier: Tier, lines: list[bytes],
                             expires: float | None, batch: int) -> int:
        """Run the enqueue script over ``member TAB job-json`` lines, batch by batch: the first
        batch small and sent alone, so the first recipients' jobs reach consumers while Redis
        still works through the rest (one script holds Redis for its whole batch)."""
        keys = self._enqueue_keys(alert_id, version, channel, tier)
        ttl = int(max((expires or 0) - time.time(), 0) + RETENTION_S)
        added = 0
        in_flight: asyncio.Task[int] | None = None
        pipe, staged = self.redis.pipeline(transaction=False), 0
        bounds = list(ramp(len(lines), batch))
        for n, (start, end) in enumerate(bounds):
            await self._enqueue(keys=keys, args=[ttl, b"\n".join(lines[start:end])], client=pipe)
            staged += 1
            if n == 0 or staged == PIPELINE_BATCHES or n == len(bounds) - 1:
                # One round trip in flight while the next is prepared: Redis works as Python does.
                if in_flight is not None:
                    added += await in_flight
                in_flight = asyncio.create_task(self._added(pipe, n == len(bounds) - 1 and self.stage_wait(pipe)))
                await asyncio.sleep(0)
                pipe, staged = self.redis.pipeline(transaction=False), 0
        if in_flight is not None:
            added += await in_flight
        return added

    async def _added(self, pipe: Pipeline, waits: bool) -> int:
        replies = await pipe.execute()
        if waits:
            self.check_replicated(replies.pop(), "enqueue")
        return sum(int(x) for x in replies)

    def _enqueue_keys(self, alert_id: str, version: int, channel: str, tier: Tier) -> list[str]:
        return [self.keys.enqueued(alert_id, version), self.keys.queue(channel, tier),
                self.keys.delivery_counts(alert_id, channel)]

    # --- worker side ------------------------------------------------------------------

    def lanes(self, channel: str) -> list[str]:
        """The channel's streams, loudest tier first: red drains before blue."""
        return [self.keys.queue(channel, tier) for tier in (*WARNING_TIERS, Tier.none)]

    async def ensure_group(self, channel: str) -> None:
        for stream in self.lanes(channel):
            try:
                await self.redis.xgroup_create(stream, self.keys.group(channel), id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _decode(self, stream: str, entries: Iterable[tuple[str, dict[str, str]]]) -> list[Claimed]:
        """Jobs from stream entries: a stub per recipient plus what the alert record holds once
        (text per version and language, expiry, issue time, msgType)."""
        stubs = [(entry_id, orjson.loads(fields["job"])) for entry_id, fields in entries if fields and "job" in fields]
        alerts = sorted({stub["alert_id"] for _, stub in stubs if "text" not in stub})
        shared: dict[str, Any] = {}
        if alerts:  # one round trip for the batch: a burst of small alerts has as many alerts as jobs
            async with self.redis.pipeline(transaction=False) as pipe:
                for alert_id in alerts:
                    pipe.hgetall(self.keys.alert(alert_id))
                shared = dict(zip(alerts, await pipe.execute(), strict=True))
        claimed = []
        for entry_id, stub in stubs:
            latest = None
            if "text" not in stub:
                record = shared.get(stub["alert_id"], {})
                latest = int(record.get("version") or 0)
                stub = {"msg_type": record.get(f"msg_type:{stub['version']}", record.get("msg_type")),
                        "expires": record.get(f"expires:{stub['version']}", record.get("expires", 0)),
                        "issued_at": record.get(f"issued_at:{stub['version']}", record.get("issued_at", 0)),
                        "text": record.get(f"text:{stub['version']}:{stub['channel']}:{stub.get('language', 'zh-CN')}")
                        or record.get(f"text:{stub['version']}:{stub.get('language', 'zh-CN')}", ""),
                        **stub}
            claimed.append(Claimed(stream, entry_id, DeliveryJob.model_validate(stub), latest))
        return claimed

    async def read(self, channel: str, consumer: str, count: int, block_ms: int) -> list[Claimed]:
        """New jobs for this consumer, loudest lane first."""
        lanes = self.lanes(channel)
        reply: Any = await self.redis.xreadgroup(self.keys.group(channel), consumer, dict.fromkeys(lanes, ">"),
                                                 count=count, block=block_ms)
        by_stream = {stream: entries for stream, entries in reply or []}
        return [c for lane in lanes for c in await self._decode(lane, by_stream.get(lane, []))]

    async def reclaim(self, channel: str, consumer: str, min_idle_ms: int, count: int) -> list[Claimed]:
        """Jobs a dead consumer held longer than the visibility timeout (XAUTOCLAIM)."""
        claimed: list[Claimed] = []
        for lane in self.lanes(channel):
            reply: Any = await self.redis.xautoclaim(lane, self.keys.group(channel), consumer,
                                                     min_idle_time=min_idle_ms, count=count)
            entries = reply[1]  # [next cursor, entries, deleted ids]
            claimed += await self._decode(lane, entries)
        return claimed

    async def current_versions(self, alert_ids: Iterable[str]) -> dict[str, int]:
        ids = sorted(set(alert_ids))
        async with self.redis.pipeline(transaction=False) as pipe:
            for alert_id in ids:
                pipe.hget(self.keys.alert(alert_id), "version")
            values = await pipe.execute()
        return {a: int(v or 0) for a, v in zip(ids, values, strict=True)}

    async def statuses(self, jobs: Sequence[DeliveryJob]) -> list[str | None]:
        return await self.statuses_of([job.delivery_id for job in jobs])

    async def statuses_of(self, delivery_ids: Sequence[str]) -> list[str | None]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for delivery_id in delivery_ids:
                pipe.hget(self.keys.delivery(delivery_id), "status")
            return list(await pipe.execute())

    async def transition(self, jobs: Sequence[DeliveryJob], new: str, reason: str = "") -> None:
        """Move deliveries to a status: every receipt, and the per-alert counts. Idempotent."""
        if not jobs:
            return
        now = time.time()
        counts: dict[str, int] = {}
        args: list[str | int | float] = [new, now, reason, len(jobs)]
        for job in jobs:
            index = counts.setdefault(self.keys.delivery_counts(job.alert_id, job.channel), len(counts) + 1)
            args += [job.attempt, int(max(job.expires - now, 0) + RETENTION_S), index]
        keys = [self.keys.delivery(job.delivery_id) for job in jobs] + list(counts)
        reached: Counter[tuple[str, str, str, int]] = Counter()
        if new == "sent":
            reached.update((job.alert_id, job.channel, job.tier.value, reach.bucket(now - job.issued_at))
                           for job in jobs if job.channel != BROADCAST)  # a broadcast is no person reached
        async with self.redis.pipeline(transaction=False) as pipe:
            await self._mark(keys=keys, args=args, client=pipe)
            for (channel, drill), n in Counter((job.channel, is_drill(job.alert_id)) for job in jobs).items():
                pipe.hincrby(self.keys.stats, f"deliveries{'-drill' if drill else ''}:{channel}:{new}", n)
            for (alert_id, channel, tier, bucket), n in reached.items():
                pipe.hincrby(self.keys.reach(alert_id), str(bucket), n)
                pipe.hincrby(self.keys.reach_channel(alert_id, channel), str(bucket), n)
                pipe.hincrby(self.keys.reach_all(channel, tier, is_drill(alert_id)), str(bucket), n)
            waits = new in ("sending", "sent") and self.stage_wait(pipe)  # what keeps a job from a second handoff
            replies = await pipe.execute()
        if waits:
            self.check_replicated(replies[-1], new)

    async def await_receipt(self, jobs: Sequence[DeliveryJob], due: float) -> None:
        """Remember jobs a provider took whose delivery receipt is still to come, until ``due``."""
        if not jobs:
            return
        channel = jobs[0].channel
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.awaiting_jobs(channel),
                      mapping={job.delivery_id: job.model_dump_json() for job in jobs})
            pipe.zadd(self.keys.awaiting(channel), {job.delivery_id: due for job in jobs})
            await pipe.execute()

    async def settle(self, channel: str, delivery_id: str) -> DeliveryJob | None:
        """The job whose receipt just came (None if already settled or never awaited)."""
        raw = await self._settle(keys=[self.keys.awaiting(channel), self.keys.awaiting_jobs(channel)],
                                 args=[delivery_id])
        return DeliveryJob.model_validate_json(raw) if raw else None

    async def settle_many(self, channel: str, delivery_ids: Sequence[str]) -> list[DeliveryJob | None]:
        """:meth:`settle` for a batch of receipts, in one round trip."""
        keys = [self.keys.awaiting(channel), self.keys.awaiting_jobs(channel)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for delivery_id in delivery_ids:
                await self._settle(keys=keys, args=[delivery_id], client=pipe)
            raws = await pipe.execute()
        return [DeliveryJob.model_validate_json(raw) if raw else None for raw in raws]

    async def overdue(self, channel: str, now: float, limit: int = 500) -> list[DeliveryJob]:
        """Jobs whose receipt did not come in time, each returned to exactly one caller."""
        raws = await self._overdue(keys=[self.keys.awaiting(channel), self.keys.awaiting_jobs(channel)],
                                   args=[now, limit])
        return [DeliveryJob.model_validate_json(raw) for raw in raws]

    async def ack_entries(self, channel: str, claimed: Sequence[Claimed]) -> None:
        by_stream: dict[str, list[str]] = {}
        for item in claimed:
            by_stream.setdefault(item.stream, []).append(item.entry_id)
        if not by_stream:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream, ids in by_stream.items():
                pipe.xack(stream, self.keys.group(channel), *ids)
                pipe.xdel(stream, *ids)
            await pipe.execute()

    async def dead_letter(self, items: Sequence[Claimed], reason: str) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for item in items:
                payload = orjson.dumps({"job": item.job.model_dump(mode="json"), "reason": reason}).decode()
                pipe.xadd(self.keys.dead_letters(item.job.channel), {"entry": payload})
            await pipe.execute()

    async def retry_later(self, jobs: Sequence[tuple[DeliveryJob, float]]) -> None:
        """Park jobs in the delayed set until their time comes (next attempt number)."""
        if not jobs:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for job, due in jobs:
                retry = job.model_copy(update={"attempt": job.attempt + 1})
                member = f"{retry.tier.value}|{orjson.dumps(retry.model_dump(mode='json')).decode()}"
                pipe.zadd(self.keys.delayed(job.channel), {member: due})
            await pipe.execute()

    async def promote_due(self, channel: str, now: float, limit: int = 1000) -> int:
        """Move retries that are due back into their lanes; returns how many."""
        tiers = [*WARNING_TIERS, Tier.none]
        keys = [self.keys.delayed(channel), *(self.keys.queue(channel, t) for t in tiers)]
        return int(await self._promote(keys=keys, args=[now, limit, *(t.value for t in tiers)]))

    async def take_tokens(self, sender: str, want: int, rate: float, burst: float) -> tuple[int, float]:
        """Up to ``want`` sends allowed now by the sender's shared bucket, and the wait for the rest."""
        granted, wait = await self._take(keys=[self.keys.rate_bucket(sender)], args=[rate, burst, want])
        return int(granted), float(wait)

    async def queue_stats(self, channel: str) -> dict[str, Any]:
        """Depth and oldest-job age per lane, plus retries waiting and dead letters (for metrics)."""
        now = time.time()
        lanes: dict[str, Any] = {}
        for tier in WARNING_TIERS:
            lane = self.keys.queue(channel, tier)
            length = await self.redis.xlen(lane)
            oldest = await self.redis.xrange(lane, count=1)
            try:
                pending: Any = await self.redis.xpending(lane, self.keys.group(channel)) if length else {}
            except ResponseError:  # no consumer has created the group yet
                pending = {}
            age = now - int(str(oldest[0][0]).split("-")[0]) / 1000 if oldest else 0.0
            lanes[tier.value] = {"depth": length, "pending": int(pending.get("pending", 0) if pending else 0),
                                 "oldest_age_s": round(age, 3)}
        return {"channel": channel, "lanes": lanes,
                "delayed": await self.redis.zcard(self.keys.delayed(channel)),
                "dead": await self.redis.xlen(self.keys.dead_letters(channel))}
