from __future__ import annotations

from datetime import UTC, datetime

from warning.cap.model import CapArea, CapInfo, CapMessage, CapReference
from warning.cap.signals import cap_signals, chain_key
from warning.models import Tier
from warning.rules.pack import load_pack

MAPPING = load_pack().cap
SENT = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)


def message(msg_type: str = "Alert", severity: str = "Severe", identifier: str = "A1",
            references: list[str] | None = None, status: str = "Actual", event: str = "暴雨",
            geocodes: list[tuple[str, str]] | None = None) -> CapMessage:
    info = CapInfo(language="zh-CN", event=event, urgency="Expected", severity=severity, certainty="Likely",
                   expires=datetime(2026, 7, 1, 12, 0, tzinfo=UTC),
                   areas=[CapArea(description="南山区", geocodes=geocodes or [("GB/T 2260", "440305")])])
    refs = [CapReference(sender="szmb", identifier=i, sent=SENT) for i in references or []]
    return CapMessage(version="1.2", identifier=identifier, sender="szmb", sent=SENT, status=status,
                      msg_type=msg_type, scope="Public", references=refs, infos=[info])


def test_alert_maps_event_severity_and_geocode() -> None:
    decision = cap_signals(message(), MAPPING, {})
    (signal,) = decision.signals
    assert (signal.hazard, signal.area, signal.tier, signal.source) == ("rainstorm", "440305", Tier.orange,
                                                                        "cap:szmb,A1#cap")
    assert signal.expires == datetime(2026, 7, 1, 12, 0, tzinfo=UTC) and decision.root == "szmb,A1"


def test_update_and_cancel_speak_for_the_chain_they_reference() -> None:
    roots = {chain_key("szmb", "A1"): "szmb,A1", chain_key("szmb", "U1"): "szmb,A1"}
    update = cap_signals(message("Update", "Extreme", "U2", ["U1"]), MAPPING, roots)
    assert update.root == "szmb,A1" and [(s.tier, s.station_id) for s in update.signals] == [(Tier.red, "cap:szmb,A1")]
    cancel = cap_signals(message("Cancel", "Minor", "C1", ["U2", "A1"]), MAPPING, roots)
    assert [(s.tier, s.final) for s in cancel.signals] == [(Tier.none, True)]


def test_refusals_and_skips_say_why() -> None:
    assert cap_signals(message("Update"), MAPPING, {}).refused == (
        "msgType Update without references: cannot tell which alert it changes")
    assert cap_signals(message(event="Earthquake"), MAPPING, {}).refused == (
        "event 'Earthquake' maps to no hazard (rule pack cap.events)")
    assert cap_signals(message(status="Test"), MAPPING, {}).skipped == "status Test: not dispatched"
    [drill] = cap_signals(message(status="Exercise"), MAPPING, {}).signals
    assert drill.drill and drill.alert_key.startswith("drill:")


def test_an_area_without_a_known_geocode_goes_to_the_city_officers() -> None:
    (signal,) = cap_signals(message(geocodes=[("UGC", "NVC013")]), MAPPING, {}).signals
    assert signal.area == "unmapped:szmb"


def test_an_update_or_cancel_of_a_chain_never_seen_starts_or_ends_it() -> None:
    update = cap_signals(message("Update", "Extreme", "U2", ["A0", "U1"]), MAPPING, {})
    assert update.root == "szmb,A0" and update.unseen_references == "A0 U1"
    assert [(s.tier, s.station_id, s.final) for s in update.signals] == [(Tier.red, "cap:szmb,A0", False)]
    cancel = cap_signals(message("Cancel", references=["A0"]), MAPPING, {})
    assert cancel.refused is None and cancel.unseen_references == "A0"
    assert [(s.tier, s.station_id, s.final) for s in cancel.signals] == [(Tier.none, "cap:szmb,A0", True)]


CMA_SIGNALS = {"台风": "typhoon", "暴雨": "rainstorm", "暴雪": "snowstorm", "寒潮": "cold_wave", "大风": "gale",
               "沙尘暴": "sandstorm", "高温": "heat", "干旱": "drought", "雷电": "lightning", "冰雹": "hail",
               "霜冻": "frost", "大雾": "fog", "霾": "haze", "道路结冰": "road_icing", "雷雨大风": "thunderstorm_gale",
               "森林火险": "forest_fire", "thunder": "lightning", "Typhoon": "typhoon", "sandstorm": "sandstorm",
               "road icing": "road_icing", "Thunderstorm gale": "thunderstorm_gale"}


def test_every_cma_signal_maps_to_a_hazard_with_a_name_in_both_languages() -> None:
    from warning.targeting.templates import shipped

    for event, hazard in CMA_SIGNALS.items():
        assert MAPPING.hazard_of(event) == hazard, event
        assert shipped().hazard_name(hazard, "zh-CN") != hazard and shipped().hazard_name(hazard, "en"), hazard


def test_the_colour_in_the_headline_wins_over_severity() -> None:
    from warning.cap.signals import colour_tier

    assert colour_tier("保定市气象台更新雷电黄色预警[Ⅲ级/较重]") is Tier.yellow
    assert colour_tier("Baoding Meteorological Observatory updates lightning yellow warning") is Tier.yellow
    assert colour_tier("深圳市暴雨红色预警信号") is Tier.red and colour_tier("", "台风橙色预警") is Tier.orange
    assert colour_tier("Red Flag Warning issued for the foothills") is None  # fire weather, not a tier
    unknown = message(severity="Unknown", event="暴雨")
    unknown.infos[0].headline = "深圳市气象台发布暴雨橙色预警"
    assert [s.tier for s in cap_signals(unknown, MAPPING, {}).signals] == [Tier.orange]


def test_cpeas_codes_are_read_as_county_or_township() -> None:
    assert MAPPING.area_code("CPEAS Geographic Code", "130602000000") == "130602"
    assert MAPPING.area_code("CPEAS Geographic Code", "440305001000") == "440305001"
    assert MAPPING.area_code("CPEAS Geographic Code", "440305001002") == "440305001002"
    assert MAPPING.area_code("GB/T 2260", "440305") == "440305" and MAPPING.area_code("UGC", "NVC013") is None


def test_the_baoding_national_system_message_becomes_a_yellow_lightning_alert() -> None:
    from tests.data import CAP_CORPUS
    from warning.cap.model import read_message
    from warning.cap.validate import validate_cap

    verdict = validate_cap((CAP_CORPUS / "cma" / "baoding-lightning-yellow-update.xml").read_bytes())
    assert verdict.valid and verdict.root is not None and verdict.version is not None
    decision = cap_signals(read_message(verdict.root, verdict.version), MAPPING, {})
    assert decision.root == "Baoding_Meteorological_Observatory,13060041600000_20240712073642"
    (signal,) = decision.signals
    assert (signal.hazard, signal.tier, signal.area, signal.drill) == ("lightning", Tier.yellow, "130602", False)


def test_the_api_says_at_once_what_a_valid_message_will_not_drive() -> None:
    from warning.cap.preview import drives_nothing
    from warning.targeting.directory import load_directory

    directory = load_directory()
    assert drives_nothing(message(), MAPPING, directory) == []
    assert drives_nothing(message(event="Earthquake"), MAPPING, directory) == [
        "will drive no alert: event 'Earthquake' maps to no hazard (rule pack cap.events)"]
    [far] = drives_nothing(message(geocodes=[("CPEAS Geographic Code", "130602000000")]), MAPPING, directory)
    assert far.startswith("area 130602 is not in this city's directory (440300 深圳市)")
    [unmapped] = drives_nothing(message(geocodes=[("UGC", "NVC013")]), MAPPING, directory)
    assert unmapped.startswith("no geocode scheme the pack maps (UGC;")
