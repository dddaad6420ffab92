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
    assert cap_signals(message("Cancel", references=["X"]), MAPPING, {}).refused == (
        "Cancel references no alert we know: X")
    assert cap_signals(message(event="Earthquake"), MAPPING, {}).refused == (
        "event 'Earthquake' maps to no hazard (rule pack cap.events)")
    assert cap_signals(message(status="Test"), MAPPING, {}).skipped == "status Test: not dispatched"
    [drill] = cap_signals(message(status="Exercise"), MAPPING, {}).signals
    assert drill.drill and drill.alert_key.startswith("drill:")


def test_an_area_without_a_known_geocode_goes_to_the_city_officers() -> None:
    (signal,) = cap_signals(message(geocodes=[("UGC", "NVC013")]), MAPPING, {}).signals
    assert signal.area == "unmapped:szmb"
