from __future__ import annotations

from datetime import UTC, datetime, timedelta

from warning.models import AlertVersion, Tier
from warning.targeting.audience import targets_for
from warning.targeting.directory import load_directory
from warning.targeting.message import render_text

DIRECTORY = load_directory()
NOW = datetime(2026, 7, 1, tzinfo=UTC)


def alert(tier: Tier, area: str = "440305001", msg_type: str = "Alert") -> AlertVersion:
    return AlertVersion(alert_id=f"gas-{area}-x", key=f"gas:{area}", hazard="gas", area=area, tier=tier,
                        version=1, msg_type=msg_type, caused_at=NOW, issued_at=NOW,  # type: ignore[arg-type]
                        expires=NOW + timedelta(hours=6))


def recipients(tier: Tier, area: str = "440305001", **kw: object) -> set[tuple[str, str]]:
    return {(t.recipient_id, t.channel) for t in targets_for(DIRECTORY, alert(tier, area), **kw)}  # type: ignore[arg-type]


def test_blue_reaches_grid_workers_endpoints_and_the_township_officer_only() -> None:
    assert recipients(Tier.blue) == {
        ("grid:440305001001", "grid"), ("grid:440305001002", "grid"),
        ("gw-nt-01", "sms"), ("gw-nt-02", "push"), ("off-nt", "sms")}


def test_yellow_adds_opted_in_residents_red_adds_everyone_and_every_level() -> None:
    assert recipients(Tier.yellow) - recipients(Tier.blue) == {("res-nt-01", "push")}
    red = recipients(Tier.red)
    assert {("off-ns", "sms"), ("off-sz", "sms"), ("res-nt-02", "sms"), ("res-nt-03", "push"),
            ("res-nt-04", "push")} <= red
    assert not any(r.startswith(("res-yh", "gw-yh", "off-yh")) for r, _ in red)  # other township


def test_each_recipient_once_on_their_first_channel_with_an_address() -> None:
    targets = targets_for(DIRECTORY, alert(Tier.red))
    assert len({t.recipient_id for t in targets}) == len(targets)
    assert next(t for t in targets if t.recipient_id == "res-nt-01").address == "tok-res-nt-01"


def test_district_alert_reaches_township_officers_inside_it() -> None:
    assert {("off-nt", "sms"), ("off-yh", "sms")} <= recipients(Tier.blue, area="440305")


def test_unmapped_area_goes_to_city_duty_officers() -> None:
    assert recipients(Tier.blue, area="station:UNKNOWN") == {("off-sz", "sms")}


def test_cancel_reaches_the_loudest_tiers_audience() -> None:
    cancel = alert(Tier.none, msg_type="Cancel")
    got = {t.recipient_id for t in targets_for(DIRECTORY, cancel, audience_tier=Tier.red)}
    assert "res-nt-02" in got and "off-sz" in got


def test_texts_in_both_languages() -> None:
    red = alert(Tier.red)
    assert render_text(red, "zh-CN", "南头街道").startswith("【红色预警】南头街道发布燃气泄漏红色预警")
    assert render_text(red, "en", "Nantou").startswith("[RED warning] gas leak in Nantou")
    assert "解除" in render_text(alert(Tier.none, msg_type="Cancel"), "zh-CN", "南头街道")


def test_gbt2260_padding_is_not_part_of_the_prefix() -> None:
    from warning.areas import area_prefix

    assert (area_prefix("440300"), area_prefix("440000"), area_prefix("440305"),
            area_prefix("440305001")) == ("4403", "44", "440305", "440305001")
    assert ("off-sz", "sms") in recipients(Tier.red, area="440300")  # a city-wide alert
