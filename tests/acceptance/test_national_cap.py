"""The national release system's CAP (国家突发事件预警信息发布系统, 12379) driving alerts in
a city that knows its CPEAS areas: the real Baoding yellow 雷电 Update (times moved to now:
it expired in 2024) and messages built in the same format — a red 暴雨 whose severity says
Unknown, its Cancel, and one for an area the city does not have, which the API flags at once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from consumers.sinks import read_sink
from tests.acceptance.conftest import cli, logs
from tests.conftest import settings_env, wait_for
from tests.data import CAP_CORPUS
from tests.integration.test_api import token
from warning.config import Settings
from warning.runner import Processes

pytestmark = pytest.mark.integration
BAODING = CAP_CORPUS / "cma" / "baoding-lightning-yellow-update.xml"
DIRECTORY = """city: {code: "130600", name: 保定市, name_en: Baoding}
areas:
  - {code: "130602", name: 竞秀区, name_en: Jingxiu District}
  - {code: "130602001", name: 先锋街道, name_en: Xianfeng Subdistrict}
"""
RING = [[115.40, 38.86], [115.45, 38.86], [115.45, 38.90], [115.40, 38.90], [115.40, 38.86]]
GRIDS = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {
    "type": "Polygon", "coordinates": [RING]}, "properties": {
    "grid_id": "130602001001", "name": "先锋一网格", "township": "130602001", "district": "130602", "city": "130600",
    "endpoint": "https://grid.local/130602001001/alerts"}}]}
PEOPLE = [
    {"id": "res-bd-01", "role": "resident", "grid": "130602001001", "phone": "+8613800000101", "opted_in": True},
    {"id": "res-bd-02", "role": "resident", "grid": "130602001001", "phone": "+8613800000102"},
    {"id": "gw-bd-01", "role": "grid_worker", "grids": ["130602001001"], "phone": "+8613800000103"},
    {"id": "off-xf", "role": "officer", "level": "township", "jurisdiction": "130602001", "phone": "+8613800000104"},
]


@pytest.fixture
def baoding(settings: Settings, tmp_path: Path) -> Settings:
    (tmp_path / "directory.yaml").write_text(DIRECTORY, encoding="utf-8")
    return settings.model_copy(update={"directory_file": tmp_path / "directory.yaml"})


@pytest.fixture
def live(baoding: Settings, tmp_path: Path) -> Iterator[Processes]:
    (tmp_path / "grids.geojson").write_bytes(orjson.dumps(GRIDS))
    (tmp_path / "people.jsonl").write_bytes(b"".join(orjson.dumps(p) + b"\n" for p in PEOPLE))
    assert cli(baoding, "grids", "import", str(tmp_path / "grids.geojson")).returncode == 0
    assert cli(baoding, "recipients", "import", str(tmp_path / "people.jsonl")).returncode == 0
    with Processes(tmp_path / "logs", env=settings_env(baoding)) as procs:
        procs.start_pipeline(baoding)
        yield procs


def fresh(xml: str) -> bytes:
    """The message with its sent / effective / onset now and its expiry six hours on."""
    now = datetime.now(UTC).astimezone().replace(microsecond=0)
    xml = re.sub(r"<(sent|effective|onset)>[^<]+<", lambda m: f"<{m.group(1)}>{now.isoformat()}<", xml)
    return re.sub(r"<expires>[^<]+<", f"<expires>{(now + timedelta(hours=6)).isoformat()}<", xml).encode()


def built(identifier: str, msg_type: str, event: str, headline: str, code: str, references: str = "") -> bytes:
    refs = f"<references>{references}</references>" if references else ""
    return fresh(f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>{identifier}</identifier>
<sender>Baoding_Meteorological_Observatory</sender><sent>x</sent><status>Actual</status>
<msgType>{msg_type}</msgType><scope>Public</scope>{refs}<info><language>zh-CN</language><category>Met</category>
<event>{event}</event><urgency>Unknown</urgency><severity>Unknown</severity><certainty>Unknown</certainty>
<effective>x</effective><expires>x</expires><headline>{headline}</headline><area><areaDesc>竞秀区</areaDesc>
<geocode><valueName>CPEAS Geographic Code</valueName><value>{code}</value></geocode></area></info></alert>""")


def recipients(settings: Settings, word: str) -> dict[str, str]:
    """Who got a message containing ``word``, and its alert id."""
    return {m["recipient"]: m["alert_id"] for ch in ("sms", "grid")
            for m in read_sink(settings.sink_dir / f"{ch}.jsonl") if word in str(m.get("text", m))}


def test_national_system_cap_drives_alerts_for_cpeas_areas(baoding: Settings, live: Processes,
                                                            tmp_path: Path) -> None:
    publisher = token(baoding, "--role", "publisher", "--id", "12379")

    def post(body: bytes) -> dict[str, object]:
        answer = httpx.post(f"{baoding.api_url}/v1/feeds/cap", content=body, timeout=30,
                            headers={"Authorization": f"Bearer {publisher}", "Content-Type": "application/xml"})
        assert answer.status_code == 202, answer.text
        return dict(answer.json())

    assert post(fresh(BAODING.read_text(encoding="utf-8")))["warnings"] == []
    staff = {"gw-bd-01", "off-xf", "grid:130602001001"}
    wait_for(lambda: staff | {"res-bd-01"} <= set(recipients(baoding, "雷电")), 90, "the yellow lightning alert",
             lambda: logs(tmp_path))
    got = recipients(baoding, "雷电")
    assert set(got) == staff | {"res-bd-01"}  # yellow: the opted-in resident only
    (alert_id,) = set(got.values())
    detail = orjson.loads(cli(baoding, "status", alert_id, "--json").stdout)
    assert (detail["hazard"], detail["tier"], detail["area"], detail["source"]) == ("lightning", "yellow", "130602",
                                                                                    "cap")
    (sms,) = [m for m in read_sink(baoding.sink_dir / "sms.jsonl") if m["recipient"] == "res-bd-01"]
    assert sms["text"].startswith("【黄色预警】竞秀区发布雷电黄色预警")
    assert "cap_chain_unseen" in (tmp_path / "logs" / "worker.log").read_text()  # its Alert was never seen

    # Built in the same format: red by its headline though severity says Unknown, then its Cancel.
    assert post(built("13060041600000_rain", "Alert", "暴雨", "保定市气象台发布暴雨红色预警", "130602000000"))[
        "warnings"] == []
    wait_for(lambda: {"res-bd-01", "res-bd-02"} <= set(recipients(baoding, "暴雨红色")), 90, "the red rainstorm",
             lambda: logs(tmp_path))
    cancel = built("13060041600000_rain_c", "Cancel", "暴雨", "保定市气象台解除暴雨红色预警", "130602000000",
                   "Baoding_Meteorological_Observatory,13060041600000_rain,2026-01-01T00:00:00+08:00")
    post(cancel)
    wait_for(lambda: {"res-bd-01", "res-bd-02"} <= set(recipients(baoding, "暴雨预警已解除")), 90,
             "the rainstorm cancelled", lambda: logs(tmp_path))

    # A valid message for an area this city does not have: accepted, and the publisher is told.
    elsewhere = post(built("11010141600000_x", "Alert", "大雾", "北京市气象台发布大雾橙色预警", "110101000000"))
    assert elsewhere["warnings"] == ["area 110101 is not in this city's directory (130600 保定市): only the city "
                                     "duty officers will be told"]
    unknown = post(built("13060041600000_q", "Alert", "地震", "保定市地震局", "130602000000"))
    assert unknown["warnings"] == ["will drive no alert: event '地震' maps to no hazard (rule pack cap.events)"]
