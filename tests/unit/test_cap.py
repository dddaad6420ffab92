"""CAP in and out: the corpus in tests/data/cap, hostile input, encodings, semantics, rendering."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.data import CAP_CORPUS
from warning.cap.model import read_message
from warning.cap.render import CapStyle, render_cap
from warning.cap.validate import schema, validate_cap
from warning.models import AlertText, AlertVersion, Reference, Tier

CORPUS = CAP_CORPUS

# The verdicts of tests/data/cap/README.md, checked with the official schemas — with one
# disagreement: the README lists noaa_errors.cap as valid CAP 1.1, but the official CAP 1.1
# schema rejects its empty <urgency>, <severity> and <certainty> (enumerations), so we do too.
VERDICTS = {
    "google-cap-library/australia.cap": (True, "1.2"),
    "google-cap-library/canada.cap": (True, "1.2"),
    "google-cap-library/canada_errors.cap": (True, "1.2"),
    "google-cap-library/earthquake-iso8859-1.cap": (True, "1.2"),
    "google-cap-library/wcatwc-warning.cap": (True, "1.2"),
    "cma/baoding-lightning-yellow-update.xml": (True, "1.2"),
    "oasis-spec-examples/cap12_appendix_a1.xml": (True, "1.2"),
    "oasis-spec-examples/cap12_appendix_a2.xml": (True, "1.2"),
    "oasis-spec-examples/cap12_appendix_a3.xml": (True, "1.2"),
    "oasis-spec-examples/cap12_appendix_a4.xml": (True, "1.2"),
    "google-cap-library/earthquake.cap": (True, "1.1"),
    "google-cap-library/no_optional_fields.cap": (True, "1.1"),
    "google-cap-library/weather.cap": (True, "1.1"),
    "google-cap-library/noaa_errors.cap": (False, "1.1"),
    "google-cap-library/invalid.cap": (False, "1.2"),
    "google-cap-library/xee.cap": (False, None),
}


def test_every_corpus_file_has_a_verdict() -> None:
    on_disk = {str(p.relative_to(CORPUS)) for p in CORPUS.glob("*/*") if p.suffix in (".cap", ".xml")}
    assert on_disk == set(VERDICTS)


@pytest.mark.parametrize(("name", "expected"), sorted(VERDICTS.items()))
def test_corpus_verdicts(name: str, expected: tuple[bool, str | None]) -> None:
    verdict = validate_cap((CORPUS / name).read_bytes())
    assert (verdict.valid, verdict.version) == expected, verdict.errors


def test_the_reasons_are_specific() -> None:
    invalid = validate_cap((CORPUS / "google-cap-library/invalid.cap").read_bytes())
    assert "Tag 'cap:scope' expected" in invalid.errors[0]
    noaa = validate_cap((CORPUS / "google-cap-library/noaa_errors.cap").read_bytes()).errors
    assert [e.split(": ")[1].rsplit("/", 1)[-1] for e in noaa[:3]] == ["urgency", "severity", "certainty"]
    # ...and a polygon written "+40.85,-118.09, +40.86,-118.09," (stray commas)
    assert noaa[3:] == ["info[0].area[0].polygon[0]: points must be 'lat,lon' pairs separated by spaces"]
    canada = validate_cap((CORPUS / "google-cap-library/canada_errors.cap").read_bytes())
    assert "msgType Update without references: it does not say which alert it changes" in canada.warnings


@pytest.fixture
def io_watch() -> Iterator[list[tuple[str, str]]]:
    """Every file open and network call made while the test body runs (sys.audit hooks)."""
    schema("1.2"), schema("1.1")  # loading the shipped schemas is allowed; do it before watching
    seen: list[tuple[str, str]] = []
    watching = [True]

    def hook(event: str, args: tuple[object, ...]) -> None:
        if watching[0] and (event == "open" or event.startswith(("socket.", "urllib."))):
            seen.append((event, str(args[0])[:120]))

    sys.addaudithook(hook)  # cannot be removed; the flag turns it off
    yield seen
    watching[0] = False


def test_hostile_xee_is_refused_without_touching_files_or_network(io_watch: list[tuple[str, str]]) -> None:
    data = (CORPUS / "google-cap-library/xee.cap").read_bytes()
    io_watch.clear()
    verdict = validate_cap(data)
    assert io_watch == []
    assert not verdict.valid and verdict.errors[0].startswith("refused: DTDForbidden")


def test_xinclude_and_schema_location_are_never_followed(io_watch: list[tuple[str, str]]) -> None:
    xinclude = b"""<?xml version="1.0"?><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
      <x xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/passwd"/></x></alert>"""
    hinted = (CORPUS / "oasis-spec-examples/cap12_appendix_a1.xml").read_bytes().replace(
        b"<identifier>", b'<y xmlns="http://a.b/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        b'xsi:schemaLocation="http://a.b/ http://127.0.0.1:9/a.xsd">a</y><identifier>', 1)
    laughs = b"""<?xml version="1.0"?><!DOCTYPE a [<!ENTITY l "lol"><!ENTITY l2 "&l;&l;&l;&l;">]>
      <alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&l2;</alert>"""
    io_watch.clear()
    results = [validate_cap(xinclude), validate_cap(hinted), validate_cap(laughs)]
    assert io_watch == []
    assert results[0].errors == ["refused: XInclude elements are not processed and not allowed in CAP"]
    assert not results[1].valid and "Unexpected child" in results[1].errors[0]
    assert results[2].errors[0].startswith("refused: DTDForbidden")


ZH_CAP = """<?xml version="1.0" encoding="GB18030"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>44030041600000_20260701080000</identifier>
  <sender>szmb@weather.sz.gov.cn</sender>
  <sent>2026-07-01T08:00:00+08:00</sent>
  <status>Actual</status><msgType>Alert</msgType><scope>Public</scope>
  <info>
    <language>zh-CN</language><category>Met</category><event>暴雨</event>
    <urgency>Expected</urgency><severity>Severe</severity><certainty>Likely</certainty>
    <expires>2026-07-01T20:00:00+08:00</expires>
    <headline>深圳市气象台发布暴雨橙色预警信号</headline>
    <area><areaDesc>南山区</areaDesc>
      <polygon>22.5,113.9 22.6,113.9 22.6,114.0 22.5,113.9</polygon><circle>22.54,113.93 5</circle>
      <geocode><valueName>GB/T 2260</valueName><value>440305</value></geocode></area>
  </info>
  <info>
    <language>en</language><category>Met</category><event>Rainstorm</event>
    <urgency>Expected</urgency><severity>Severe</severity><certainty>Likely</certainty>
    <headline>Orange rainstorm warning</headline><area><areaDesc>Nanshan</areaDesc></area>
  </info>
</alert>"""


def test_gb18030_message_with_two_languages_is_read_whole() -> None:
    verdict = validate_cap(ZH_CAP.encode("gb18030"))
    assert verdict.valid, verdict.errors
    assert verdict.root is not None
    message = read_message(verdict.root, "1.2")
    assert [i.language for i in message.infos] == ["zh-CN", "en"]
    zh = message.info_for()
    assert zh is not None and zh.event == "暴雨" and zh.headline == "深圳市气象台发布暴雨橙色预警信号"
    assert zh.areas[0].geocodes == [("GB/T 2260", "440305")] and zh.areas[0].circles == [(22.54, 113.93, 5.0)]
    assert message.info_for(("en",)).headline == "Orange rainstorm warning"  # type: ignore[union-attr]


@pytest.mark.parametrize(("change", "error"), [
    (("22.5,113.9 22.6,113.9 22.6,114.0 22.5,113.9", "22.5,113.9 22.6,113.9 22.6,114.0 22.7,113.9"),
     "polygon is not closed"),
    (("22.5,113.9 22.6,113.9 22.6,114.0 22.5,113.9", "22.5,113.9 22.6,113.9 22.5,113.9"),
     "a polygon needs at least 4 points"),
    (("<scope>Public</scope>", "<scope>Restricted</scope>"), "scope is Restricted but <restriction>"),
    (("<scope>Public</scope>", "<scope>Private</scope>"), "scope is Private but <addresses>"),
    (("<msgType>Alert</msgType>", "<msgType>Update</msgType><references>szmb,X</references>"),
     "is not a 'sender,identifier,sent' triple"),
    (("<circle>22.54,113.93 5</circle>", "<circle>22.54 5</circle>"), "expected 'lat,lon radius_km'"),
])
def test_semantic_errors_the_schema_cannot_see(change: tuple[str, str], error: str) -> None:
    verdict = validate_cap(ZH_CAP.replace(*change).encode("gb18030"))
    assert not verdict.valid and any(error in e for e in verdict.errors), verdict.errors


def test_cap_11_times_without_offset_are_errors() -> None:
    data = (CORPUS / "google-cap-library/weather.cap").read_bytes()
    text = data.decode()
    import re

    sent = re.search(r"<sent>([^<]+)</sent>", text).group(1)  # type: ignore[union-attr]
    verdict = validate_cap(text.replace(sent, sent[:19]).encode())
    assert any("has no UTC offset" in e for e in verdict.errors)


NOW = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


def version(tier: Tier, number: int, msg_type: str, area: str = "440305001") -> AlertVersion:
    refs = [Reference(identifier=f"rainstorm-{area}-x.v{i}", sent=NOW + timedelta(minutes=i)) for i in range(1, number)]
    return AlertVersion(alert_id=f"rainstorm-{area}-x", key=f"rainstorm:{area}", hazard="rainstorm", area=area,
                        tier=tier, version=number, msg_type=msg_type, references=refs,  # type: ignore[arg-type]
                        caused_at=NOW, issued_at=NOW + timedelta(minutes=number), expires=NOW + timedelta(hours=6),
                        cause="station RAIN-YH-001: rainstorm = 53.5 (orange)")


@pytest.mark.parametrize(("tier", "number", "msg_type"), [
    (Tier.blue, 1, "Alert"), (Tier.yellow, 2, "Update"), (Tier.orange, 3, "Update"), (Tier.red, 4, "Update"),
    (Tier.none, 5, "Cancel")])
def test_every_version_renders_to_schema_valid_cap_12(tier: Tier, number: int, msg_type: str) -> None:
    style = CapStyle(sender="szmb@example.cn", identifier_prefix="CN-SZ-")
    xml = render_cap(version(tier, number, msg_type), style, {"zh-CN": "南头街道", "en": "Nantou"})
    verdict = validate_cap(xml)
    assert verdict.valid and verdict.warnings == [], verdict.errors
    assert verdict.root is not None
    message = read_message(verdict.root, "1.2")
    assert message.identifier == f"CN-SZ-rainstorm-440305001-x.v{number}" and message.msg_type == msg_type
    assert [(r.sender, r.identifier) for r in message.references] == [
        ("szmb@example.cn", f"CN-SZ-rainstorm-440305001-x.v{i}") for i in range(1, number)]
    assert message.sent == NOW + timedelta(minutes=number) and message.sent.utcoffset() == timedelta(hours=8)
    zh, en = message.infos
    assert (zh.language, en.language) == ("zh-CN", "en")
    assert zh.severity == {"blue": "Minor", "yellow": "Moderate", "orange": "Severe", "red": "Extreme",
                           "none": "Minor"}[tier.value]
    assert zh.areas[0].geocodes == [("GB/T 2260", "440305001")] and zh.areas[0].description == "南头街道"
    if msg_type == "Cancel":
        assert zh.urgency == "Past" and "解除" in zh.headline


def test_what_an_officer_or_a_feed_writes_arrives_as_written_and_the_document_stays_valid() -> None:
    # Markup, entities and quotes are escaped; characters XML 1.0 cannot carry (a stray control
    # character pasted into a form) are dropped rather than making the whole document unreadable.
    hostile = AlertText(headline="暴雨红色 <预警> & \"撤离\" 'now'", description="</description><x>&amp;\x01\x0b end",
                        instruction="go up\tstairs\r\nnow \ufffe")
    alert = version(Tier.red, 2, "Update").model_copy(update={
        "texts": {"zh-CN": hostile}, "cause": "a < b \x1f", "area": "440305001",
        "polygons": [[(22.5, 113.9), (22.6, 113.9), (22.6, 114.05), (22.5, 113.9)]], "circles": [(22.55, 113.95, 2.5)]})
    xml = render_cap(alert, CapStyle(identifier_prefix="CN-&-"), {"zh-CN": "南头 & 街道", "en": "Nantou <west>"})
    verdict = validate_cap(xml)
    assert verdict.valid and verdict.warnings == [], verdict.errors
    assert verdict.root is not None
    message = read_message(verdict.root, "1.2")
    assert message.identifier == "CN-&-rainstorm-440305001-x.v2"
    zh, en = message.infos
    assert zh.headline == hostile.headline and zh.description == "</description><x>&amp; end"
    assert b"<instruction>go up\tstairs\r\nnow </instruction>" in xml  # \r\n is kept as written
    assert en.description == "a < b" and zh.areas[0].description == "南头 & 街道"
    assert en.areas[0].description == "Nantou <west>"
    assert zh.areas[0].polygons == [[(22.5, 113.9), (22.6, 113.9), (22.6, 114.05), (22.5, 113.9)]]
    assert zh.areas[0].circles == [(22.55, 113.95, 2.5)]


def test_cap_validate_cli_shape_and_exit_code(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from warning.cli import app

    good = CORPUS / "oasis-spec-examples/cap12_appendix_a1.xml"
    bad = CORPUS / "google-cap-library/invalid.cap"
    ok = CliRunner().invoke(app, ["cap", "validate", str(good)])
    assert ok.exit_code == 0
    import orjson

    assert orjson.loads(ok.stdout) == {"file": str(good), "valid": True, "version": "1.2", "errors": [],
                                       "warnings": []}
    mixed = CliRunner().invoke(app, ["cap", "validate", str(good), str(bad)])
    assert mixed.exit_code == 1 and [orjson.loads(x)["valid"] for x in mixed.stdout.splitlines()] == [True, False]
