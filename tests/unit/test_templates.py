"""Message templates: the shipped texts and guidance, per-channel overrides, the city's time
zone, drills, and a bad file that names the file, key and placeholder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from warning.models import AlertText, AlertVersion, Tier
from warning.targeting.sms import fit, segments
from warning.targeting.templates import TemplateError, load_templates, shipped

T0 = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)


def version(tier: Tier = Tier.red, hazard: str = "gas", msg_type: str = "Alert", **extra: object) -> AlertVersion:
    return AlertVersion(alert_id="gas-440305001-20260701T020000Z", key="gas:440305001", hazard=hazard,
                        area="440305001", tier=tier, version=1, msg_type=msg_type, caused_at=T0,  # type: ignore[arg-type]
                        issued_at=T0, expires=T0 + timedelta(hours=6), **extra)


def test_the_shipped_texts_carry_the_guidance_and_local_time() -> None:
    t = shipped()
    zh = t.render(version(), "zh-CN", "南头街道", "Asia/Shanghai")
    assert zh.startswith("【红色预警】南头街道发布燃气泄漏红色预警，有效至16:00。"
                         "立即撤离，禁止开关电器，拨打119。回复1确认。编号")
    en = t.render(version(), "en", "Nantou", "Asia/Shanghai")
    assert en.startswith("[RED warning] gas leak in Nantou, valid until 16:00. Leave now; do not switch electrics; "
                         "call 119. Reply 1 to confirm. Ref ")
    assert t.render(version(), "en", "Nantou", "Europe/London").count("valid until 09:00") == 1  # BST
    cancel = t.render(version(Tier.none, msg_type="Cancel"), "zh-CN", "南头街道", "Asia/Shanghai")
    assert cancel.startswith("【解除】南头街道燃气泄漏预警已解除。编号")


def test_an_officers_words_replace_the_standard_ones_and_a_drill_is_marked() -> None:
    written = version(Tier.orange, "rainstorm", texts={"zh-CN": AlertText(headline="南头街道暴雨橙色预警",
                                                                          instruction="转移低洼处人员。")}, drill=True)
    text = shipped().render(written, "zh-CN", "南头街道", "Asia/Shanghai")
    assert text.startswith("【演练】【橙色预警】南头街道暴雨橙色预警，有效至16:00。转移低洼处人员。回复1确认。")
    assert shipped().render(written, "en", "Nantou", "Asia/Shanghai").startswith(
        "[EXERCISE] [ORANGE warning] rainstorm in Nantou, valid until 16:00. Stop outdoor work; keep away")


def test_every_shipped_text_fits_the_sms_budget() -> None:
    t = shipped()
    for hazard, spec in t.spec.hazards.items():
        for tier in spec.guidance:
            for lang, area in (("zh-CN", "南头街道"), ("en", "Nantou Subdistrict")):
                text = t.render(version(Tier(tier), hazard), lang, area, "Asia/Shanghai")
                # two segments at most (the default budget is four): nothing is cut
                assert segments(text).count <= 2 and fit(text, 4) == text, (hazard, tier, lang, text)


def test_heat_has_no_blue_tier() -> None:
    assert not shipped().has_tier("heat", "blue") and shipped().has_tier("heat", "red")
    assert shipped().has_tier("earthquake", "blue")  # a hazard without templates takes any tier


def test_a_channel_may_have_its_own_text(tmp_path: Path) -> None:
    path = tmp_path / "templates.yaml"
    path.write_text("""
default:
  zh-CN: {alert: "{headline}", cancel: "解除"}
  en: {alert: "{headline}", cancel: "cleared"}
hazards:
  gas:
    name: {zh-CN: 燃气, en: gas}
    texts:
      red: {grid: {zh-CN: "网格 {tier} {ref}", en: "grid {tier} {ref}"}}
""", encoding="utf-8")
    t = load_templates(path)
    alert = version()
    assert t.render(alert, "zh-CN", "南头", "Asia/Shanghai", "grid").startswith("网格 红色 ")
    assert t.override_channels(alert) == ["grid"]
    assert t.override_channels(version(Tier.orange)) == []


@pytest.mark.parametrize(("text", "message"), [
    ('default: {zh-CN: {alert: "{area} {colour}"}, en: {alert: "x"}}',
     r"templates.yaml: default.zh-CN.alert: unknown placeholder \{colour\}"),
    ('default: {zh-CN: {alert: "x"}, en: {alert: "x"}}\nhazards: {gas: {texts: {red: {sms: {en: "{until!r}{"}}}}}',
     r"templates.yaml: hazards.gas.texts.red.sms.en: "),
    ('default: {zh-CN: {alert: "x"}}', r"templates.yaml: default.en.alert: missing"),
    ('default: {zh-CN: {alert: "x", body: "y"}, en: {alert: "x"}}', r"templates.yaml: default.zh-CN.body: Extra"),
])
def test_a_bad_template_names_the_file_key_and_placeholder(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "templates.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TemplateError, match=message):
        load_templates(path)
