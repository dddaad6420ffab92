"""Batches of what is waiting (the lifecycle agent's batcher), without Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warning.pipeline.batching import Waiting, run_batched


def by_partition(item: tuple[int, int]) -> int:
    return item[0]


async def source(queue: asyncio.Queue[tuple[int, int] | None]) -> AsyncIterator[tuple[int, int]]:
    while (item := await queue.get()) is not None:
        yield item


async def test_an_idle_item_is_handed_over_at_once_without_a_second_one() -> None:
    queue: asyncio.Queue[tuple[int, int] | None] = asyncio.Queue()
    waiting: Waiting[tuple[int, int], int] = Waiting(10, 40, by_partition)
    got: list[list[tuple[int, int]]] = []
    handed = asyncio.Event()

    async def handle(batch: list[tuple[int, int]]) -> None:
        got.append(batch)
        handed.set()

    task = asyncio.create_task(run_batched(waiting, source(queue), handle))
    await queue.put((0, 1))
    await asyncio.wait_for(handed.wait(), 1)  # nothing else arrives: no timer, no second item needed
    assert got == [[(0, 1)]]
    await queue.put(None)
    await asyncio.wait_for(task, 1)


async def test_what_arrives_during_a_batch_is_the_next_batch_in_order_up_to_the_maximum() -> None:
    queue: asyncio.Queue[tuple[int, int] | None] = asyncio.Queue()
    waiting: Waiting[tuple[int, int], int] = Waiting(3, 12, by_partition)
    got: list[list[tuple[int, int]]] = []
    release = asyncio.Event()

    async def handle(batch: list[tuple[int, int]]) -> None:
        got.append(batch)
        if len(got) == 1:
            await release.wait()  # the first batch is slow; seven more items come meanwhile

    task = asyncio.create_task(run_batched(waiting, source(queue), handle))
    await queue.put((0, 0))
    while not got:
        await asyncio.sleep(0)
    for i in range(1, 8):
        await queue.put((i % 2, i))
    while len(waiting) < 7:
        await asyncio.sleep(0)
    release.set()
    await queue.put(None)
    await asyncio.wait_for(task, 1)
    assert got == [[(0, 0)], [(1, 1), (0, 2), (1, 3)], [(0, 4), (1, 5), (0, 6)], [(1, 7)]]


async def test_the_filler_stops_taking_at_max_waiting_and_goes_on_when_a_batch_is_taken() -> None:
    waiting: Waiting[tuple[int, int], int] = Waiting(2, 4, by_partition)

    async def ten() -> AsyncIterator[tuple[int, int]]:
        for i in range(10):
            yield (0, i)

    filler = asyncio.create_task(waiting.fill(ten()))
    while len(waiting) < 4:
        await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(waiting) == 4 and not filler.done()  # held back, not dropped
    batches = waiting.batches()
    assert await anext(batches) == [(0, 0), (0, 1)]
    while len(waiting) < 4:
        await asyncio.sleep(0)
    assert [i for _, i in await anext(batches)] == [2, 3]
    filler.cancel()


async def test_forget_drops_only_the_revoked_partitions_items() -> None:
    waiting: Waiting[tuple[int, int], int] = Waiting(10, 40, by_partition)

    async def items() -> AsyncIterator[tuple[int, int]]:
        for i in range(6):
            yield (i % 3, i)

    await waiting.fill(items())
    assert waiting.forget({1, 2}) == 4
    assert [b async for b in waiting.batches()] == [[(0, 0), (0, 3)]]


async def test_a_failing_handler_stops_the_filler_and_the_error_propagates() -> None:
    queue: asyncio.Queue[tuple[int, int] | None] = asyncio.Queue()
    waiting: Waiting[tuple[int, int], int] = Waiting(10, 40, by_partition)

    async def handle(batch: list[tuple[int, int]]) -> None:
        raise RuntimeError("redis said no")

    await queue.put((0, 1))
    with pytest.raises(ExceptionGroup) as raised:
        await asyncio.wait_for(run_batched(waiting, source(queue), handle), 1)
    assert [str(e) for e in raised.value.exceptions] == ["redis said no"]


async def test_a_failing_stream_stops_the_batches_and_the_error_propagates() -> None:
    waiting: Waiting[tuple[int, int], int] = Waiting(10, 40, by_partition)
    handled: list[list[tuple[int, int]]] = []

    async def broken() -> AsyncIterator[tuple[int, int]]:
        yield (0, 1)
        await asyncio.sleep(0.01)
        raise ConnectionError("broker gone")

    async def handle(batch: list[tuple[int, int]]) -> None:
        handled.append(batch)

    with pytest.raises(ExceptionGroup) as raised:
        await asyncio.wait_for(run_batched(waiting, broken(), handle), 1)
    assert [type(e) for e in raised.value.exceptions] == [ConnectionError]
    assert handled == [[(0, 1)]]


def test_sizes_are_checked() -> None:
    with pytest.raises(ValueError, match="max_batch <= max_waiting"):
        Waiting(10, 5, by_partition)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 200), max_batch=st.integers(1, 20), extra=st.integers(0, 40),
       pauses=st.lists(st.integers(0, 3), min_size=1, max_size=20))
def test_batches_hand_over_every_item_once_in_order_within_the_maximum(
        n: int, max_batch: int, extra: int, pauses: list[int]) -> None:
    async def scenario() -> list[list[tuple[int, int]]]:
        waiting: Waiting[tuple[int, int], int] = Waiting(max_batch, max_batch + extra, by_partition)
        got: list[list[tuple[int, int]]] = []

        async def items() -> AsyncIterator[tuple[int, int]]:
            for i in range(n):
                for _ in range(pauses[i % len(pauses)]):
                    await asyncio.sleep(0)
                yield (i % 4, i)

        async def handle(batch: list[tuple[int, int]]) -> None:
            got.append(batch)
            for _ in range(pauses[len(got) % len(pauses)]):
                await asyncio.sleep(0)

        await asyncio.wait_for(run_batched(waiting, items(), handle), 5)
        return got

    got = asyncio.run(scenario())
    assert [i for batch in got for _, i in batch] == list(range(n))
    assert all(1 <= len(batch) <= max_batch for batch in got)


async def test_batches_are_bounded_by_weight_and_an_overweight_item_still_goes_alone() -> None:
    """A grouped signals record weighs its signal count: a batch holds at most max_batch signals."""
    waiting: Waiting[tuple[int, int], int] = Waiting(5, 40, by_partition, weight=lambda item: item[1])

    async def items() -> AsyncIterator[tuple[int, int]]:
        for weight in (3, 3, 1, 1, 9, 2, 2):
            yield (0, weight)

    await waiting.fill(items())
    assert [[w for _, w in batch] async for batch in waiting.batches()] == [[3], [3, 1, 1], [9], [2, 2]]


async def test_back_pressure_counts_weight_not_items() -> None:
    waiting: Waiting[tuple[int, int], int] = Waiting(10, 20, by_partition, weight=lambda item: item[1])

    async def heavy() -> AsyncIterator[tuple[int, int]]:
        for _ in range(10):
            yield (0, 10)

    filler = asyncio.create_task(waiting.fill(heavy()))
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(waiting) == 2 and not filler.done()  # 20 units waiting: two records of 10, not 20 records
    filler.cancel()
