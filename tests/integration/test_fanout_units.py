"""City-wide fan-out cut into work units (warning/pipeline/units.py) on the real Redis: each
resident queued once across the units, a replayed unit adds nothing, a superseded or expired
unit enqueues nobody, a small audience stays inline."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from tests.conftest import _delete_prefix, city_of_residents, lane_entries
from warning.bench import gridworld
from warning.bootstrap import Container, bootstrap
from warning.config import Settings
from warning.delivery.batches import FIRST_BATCH
from warning.models import AlertVersion, Tier
from warning.pipeline.fanout import fan_out, fan_out_batch
from warning.pipeline.units import FanoutUnit, enqueue_unit

pytestmark = pytest.mark.integration
GRIDS, PER_GRID, UNIT = 12, 50, 100  # 600 residents, 6 units of 2 grids
CELLS = 2  # a red alert also goes to the area's cells (cell broadcast), one per language: inline


def city_alert(version: int = 1, expires_in: timedelta = timedelta(hours=1)) -> AlertVersion:
    now = datetime.now(UTC)
    return AlertVersion(alert_id="rainstorm-440305-city", key="rainstorm:440305", hazard="rainstorm",
                        area="440305", tier=Tier.red, version=version, msg_type="Alert" if version == 1 else "Update",
                        caused_at=now, issued_at=now, expires=now + expires_in, cause="test")


async def city(settings: Settings, tmp_path: Path, unit: int) -> Container:
    """GRIDS grids of PER_GRID residents each (push), one empty grid, no staff."""
    directory = city_of_residents(settings, tmp_path, GRIDS, PER_GRID)
    return bootstrap(settings.model_copy(update={"directory_file": directory, "fanout_unit_residents": unit}),
                     logging=False)


@pytest.fixture
async def units_city(settings: Settings, tmp_path: Path) -> AsyncIterator[Container]:
    c = await city(settings, tmp_path, UNIT)
    yield c
    await _delete_prefix(c.redis, settings.redis_prefix)
    await c.redis.aclose()


async def queued_recipients(c: Container) -> Counter[str]:
    return Counter(orjson.loads(f["job"])["recipient"] for _, f in await lane_entries(c, "push", Tier.red))


async def published_units(c: Container, alert: AlertVersion) -> tuple[int, list[FanoutUnit]]:
    got: list[FanoutUnit] = []

    async def publish(units: Sequence[FanoutUnit]) -> None:
        got.extend(units)

    return await fan_out_batch(c, [alert], publish), got


async def test_a_city_audience_is_cut_into_units_that_queue_each_resident_once(units_city: Container) -> None:
    c = units_city
    inline, units = await published_units(c, city_alert())
    # inline only the first unit's first grid (within FIRST_BATCH): the units carry the rest
    first = await queued_recipients(c)
    assert inline == CELLS + PER_GRID and set(first.values()) == {1}
    g = next(g for g in range(GRIDS) if gridworld.grid_id(g) == units[0].grids[0])
    assert set(first) == {f"r{g}-{i}" for i in range(PER_GRID)}
    assert [(u.index, u.of, len(u.grids)) for u in units] == [(i, 6, 2) for i in range(6)]
    # the empty grid is in no unit
    assert sorted(g for u in units for g in u.grids) == [gridworld.grid_id(g) for g in range(GRIDS)]
    assert len({u.key for u in units}) == 6
    assert [await enqueue_unit(c, FanoutUnit.from_bytes(u.to_bytes())) for u in units] == [UNIT - PER_GRID] \
        + [UNIT] * 5  # the first unit's residents queued inline are refused, not queued twice
    queued = await queued_recipients(c)
    assert len(queued) == GRIDS * PER_GRID and set(queued.values()) == {1}
    assert [await enqueue_unit(c, u) for u in units] == [0] * 6  # a unit replayed after a crash adds nobody
    assert sum((await queued_recipients(c)).values()) == GRIDS * PER_GRID
    job = orjson.loads((await lane_entries(c, "push", Tier.red))[0][1]["job"])
    assert (job["alert_id"], job["version"], job["tier"], job["channel"]) == ("rainstorm-440305-city", 1, "red", "push")


async def test_a_big_first_grid_is_sampled_not_read_whole(settings: Settings, tmp_path: Path) -> None:
    directory = city_of_residents(settings, tmp_path, 2, 3 * FIRST_BATCH)
    c = bootstrap(settings.model_copy(update={"directory_file": directory, "fanout_unit_residents": 3 * FIRST_BATCH}),
                  logging=False)
    try:
        inline, units = await published_units(c, city_alert())
        first = len(await queued_recipients(c))
        assert FIRST_BATCH <= first < 2 * FIRST_BATCH and inline == CELLS + first  # one HSCAN step, not 300
        assert [await enqueue_unit(c, u) for u in units] == [3 * FIRST_BATCH - first, 3 * FIRST_BATCH]
        queued = await queued_recipients(c)
        assert len(queued) == 6 * FIRST_BATCH and set(queued.values()) == {1}
    finally:
        await _delete_prefix(c.redis, settings.redis_prefix)
        await c.redis.aclose()


async def test_a_unit_of_a_superseded_version_or_an_expired_alert_queues_nobody(units_city: Container) -> None:
    c = units_city
    _, old = await published_units(c, city_alert(1))
    _, new = await published_units(c, city_alert(2))  # v2 recorded: v1's units are stale
    assert await enqueue_unit(c, old[0]) == 0
    assert await enqueue_unit(c, new[0]) == UNIT - PER_GRID  # its first grid queued inline with v2
    expired = FanoutUnit(**{**new[1].__dict__, "expires": datetime.now(UTC).timestamp() - 1})
    assert await enqueue_unit(c, expired) == 0
    # v1's first grid, queued while v1 was current (consumers drop it as superseded), and v2's first unit
    assert Counter(orjson.loads(f["job"])["version"] for _, f in await lane_entries(c, "push", Tier.red)) \
        == {1: PER_GRID, 2: UNIT}


async def test_without_a_publisher_the_units_are_enqueued_in_turn(units_city: Container) -> None:
    assert await fan_out(units_city, city_alert()) == GRIDS * PER_GRID + CELLS
    assert set((await queued_recipients(units_city)).values()) == {1}


async def test_an_audience_within_one_unit_stays_inline(settings: Settings, tmp_path: Path) -> None:
    c = await city(settings, tmp_path, GRIDS * PER_GRID)
    try:
        inline, units = await published_units(c, city_alert())
        assert units == [] and inline == GRIDS * PER_GRID + CELLS
        assert set((await queued_recipients(c)).values()) == {1}
    finally:
        await _delete_prefix(c.redis, settings.redis_prefix)
        await c.redis.aclose()
