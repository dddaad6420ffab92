"""The recipient directory and grid registry on the real Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from warning import redis_client
from warning.bootstrap import Container
from warning.targeting.grids import GridFileError
from warning.targeting.importer import import_recipients, store_grids

pytestmark = pytest.mark.integration


def test_csv_import_reports_bad_lines_and_loads_the_rest_then_moves_and_removes(
        container: Container, tmp_path: Path) -> None:
    client = redis_client.connect_sync(container.settings.redis_url)
    keys = container.keys
    demo = {k: set(client.hkeys(k)) for k in (keys.residents("440305001001"), keys.residents("440305002001"),
                                               keys.workers("440305001001"), keys.workers("440305001002"))}

    def added(key: str) -> set[bytes]:
        return set(client.hkeys(key)) - demo[key]

    first = tmp_path / "people.csv"
    first.write_text(
        "id,role,phone,push_token,channels,grid,grids,level,jurisdiction,opted_in\n"
        "r1,resident,+8613800000001,,sms,440305001001,,,,yes\n"
        "r2,resident,not-a-phone,,sms,440305001001,,,,\n"          # line 3: bad phone
        "w1,grid_worker,+8613800000002,,sms,,440305001001|440305001002,,,\n"
        "o1,officer,+8613800000003,,sms,,,township,,\n"            # line 5: no jurisdiction
        "r3,resident,,tok-3,push|sms,440305002001,,,,\n")
    report = import_recipients(client, keys, first)
    assert (report.upserted, report.removed) == (3, 0)
    assert [n for n, _ in report.errors] == [3, 5]
    assert "phone" in report.errors[0][1] and "an officer needs level and jurisdiction" in report.errors[1][1]
    assert added(keys.residents("440305001001")) == {b"r1"}
    assert added(keys.workers("440305001002")) == {b"w1"}

    second = tmp_path / "changes.jsonl"  # r1 moves grid, w1 is removed
    second.write_text('{"id": "r1", "role": "resident", "phone": "+8613800000001", "grid": "440305002001"}\n'
                      '{"id": "w1", "op": "remove"}\n{"op": "remove"}\n')
    report = import_recipients(client, keys, second)
    assert (report.upserted, report.removed, [n for n, _ in report.errors]) == (1, 1, [3])
    assert added(keys.residents("440305001001")) == set()
    assert added(keys.residents("440305002001")) == {b"r1", b"r3"}
    assert added(keys.workers("440305001001")) == set() and added(keys.workers("440305001002")) == set()
    client.close()


async def test_an_imported_grid_registry_replaces_the_old_one_in_a_running_worker(container: Container) -> None:
    client = redis_client.connect_sync(container.settings.redis_url)
    single = (b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"grid_id":"440305009001",'
              b'"name":"new"},"geometry":{"type":"Polygon","coordinates":[[[113.0,22.0],[113.1,22.0],'
              b'[113.1,22.1],[113.0,22.0]]]}}]}')
    assert store_grids(client, container.keys, single, "new.geojson") == 1
    with pytest.raises(GridFileError):
        store_grids(client, container.keys, b"{}", "broken.geojson")  # refused, the registry is kept
    client.close()
    await container.refresh_grids()
    assert [g.id for g in container.grids.grids] == ["440305009001"]
    assert [g.id for g in container.grids.at_point(22.05, 113.05)] == ["440305009001"]
