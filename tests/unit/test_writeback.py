"""Evaluate's write-back cache (warning/pipeline/writeback.py): readings are acknowledged only
once Kafka has the windows that cover them, never for a partition that left meanwhile, never
after a failed write, and flushes reach the producer in the order they were taken.

A fake producer here (acknowledgements the test releases); kill -9 before a flush on real
Kafka is tests/acceptance/test_alert_versions.py."""

from __future__ import annotations

import asyncio
from typing import Any

from faust.types import TP

from warning.pipeline.writeback import WriteBack

TP0 = TP("warning.observations", 0)


class Reading:
    def __init__(self, offset: int) -> None:
        self.offset, self.acked = offset, False

    def ack(self) -> bool:
        self.acked = True
        return True


class HeldProducer:
    """Records what it is handed, in order; each acknowledgement waits for the test."""

    def __init__(self) -> None:
        self.handed: list[tuple[int, str, dict[str, Any]]] = []
        self.acks: list[asyncio.Future[str]] = []
        self.stall_next: asyncio.Event | None = None  # the next handover waits for it

    async def write(self, partition: int, station_id: str, window: dict[str, Any]) -> asyncio.Future[str]:
        stall, self.stall_next = self.stall_next, None
        if stall is not None:
            await stall.wait()
        self.handed.append((partition, station_id, dict(window)))
        ack: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        return ack

    def acknowledge_all(self, error: BaseException | None = None) -> None:
        for ack in self.acks:
            if not ack.done():
                ack.set_exception(error) if error else ack.set_result("ok")


async def _settled(cache: WriteBack) -> None:
    await asyncio.wait_for(cache.settle(5.0), 5.0)


def _cache(producer: HeldProducer, failures: list[BaseException] | None = None) -> WriteBack:
    async def fail(exc: BaseException) -> None:
        (failures if failures is not None else []).append(exc)

    return WriteBack(producer.write, fail)


def test_readings_are_acknowledged_only_once_kafka_has_their_windows() -> None:
    async def main() -> None:
        producer = HeldProducer()
        cache = _cache(producer)
        readings = [Reading(0), Reading(1)]
        cache.dirty[TP0]["RAIN-1"] = {"mm": 30.0}
        cache.pending[TP0] += readings
        await cache.flush(TP0)
        assert producer.handed == [(0, "RAIN-1", {"mm": 30.0})]
        await asyncio.sleep(0)  # the acknowledging task runs, and waits
        assert not any(r.acked for r in readings) and cache.in_flight
        producer.acknowledge_all()
        await _settled(cache)
        assert all(r.acked for r in readings) and not cache.in_flight
        assert cache.dirty[TP0] == {} and cache.pending[TP0] == []

    asyncio.run(main())


def test_a_partition_revoked_before_kafka_answers_is_left_to_its_next_owner() -> None:
    async def main() -> None:
        producer = HeldProducer()
        cache = _cache(producer)
        reading = Reading(7)
        cache.dirty[TP0]["RAIN-1"] = {"mm": 30.0}
        cache.pending[TP0].append(reading)
        await cache.flush(TP0)
        cache.forget([TP0])
        producer.acknowledge_all()
        await _settled(cache)
        assert not reading.acked  # the new owner replays it from the committed offset

    asyncio.run(main())


def test_a_failed_write_acknowledges_nothing_and_reports_the_failure() -> None:
    async def main() -> None:
        producer = HeldProducer()
        failures: list[BaseException] = []
        cache = _cache(producer, failures)
        reading = Reading(3)
        cache.dirty[TP0]["RAIN-1"] = {"mm": 30.0}
        cache.pending[TP0].append(reading)
        await cache.flush(TP0)
        producer.acknowledge_all(RuntimeError("broker gone"))
        await _settled(cache)
        assert not reading.acked
        assert [str(f) for f in failures] == ["broker gone"]

    asyncio.run(main())


def test_a_later_flush_of_a_station_reaches_the_producer_after_an_earlier_one() -> None:
    """The timer's flush stalls handing over (a full producer); the agent's flush taken after
    it must not overtake it, or the older window would be the last in the changelog."""

    async def main() -> None:
        producer = HeldProducer()
        cache = _cache(producer)
        gate = producer.stall_next = asyncio.Event()
        cache.dirty[TP0]["RAIN-1"] = {"mm": 30.0}
        first = asyncio.ensure_future(cache.flush(TP0))
        await asyncio.sleep(0)
        cache.dirty[TP0]["RAIN-1"] = {"mm": 55.0}
        second = asyncio.ensure_future(cache.flush(TP0))
        await asyncio.sleep(0)
        assert producer.handed == []  # the second, free to hand over, waits for the first
        gate.set()
        await asyncio.wait_for(asyncio.gather(first, second), 5.0)
        assert [w["mm"] for _, _, w in producer.handed] == [30.0, 55.0]

    asyncio.run(main())


def test_the_agents_dict_is_emptied_in_place_so_windows_written_across_an_await_are_kept() -> None:
    async def main() -> None:
        cache = _cache(HeldProducer())
        held = cache.dirty[TP0]  # the agent holds this across an await
        held["RAIN-1"] = {"mm": 1.0}
        await cache.flush(TP0)
        held["RAIN-2"] = {"mm": 2.0}
        assert cache.dirty[TP0] == {"RAIN-2": {"mm": 2.0}}

    asyncio.run(main())


def test_due_names_partitions_with_messages_whose_flush_is_old() -> None:
    async def main() -> None:
        cache = _cache(HeldProducer())
        other = TP("warning.observations", 1)
        cache.pending[TP0].append(Reading(0))
        cache.pending[other].append(Reading(0))
        cache.flushed_at[other] = float("inf")  # just flushed
        assert cache.due(5.0) == [TP0]

    asyncio.run(main())
