"""Message text per tier and language (zh-CN, en). Short: it may travel as one SMS."""

from __future__ import annotations

import base64
import hashlib

from warning.models import AlertVersion, Tier

_TIER = {
    "zh-CN": {Tier.blue: "蓝色", Tier.yellow: "黄色", Tier.orange: "橙色", Tier.red: "红色"},
    "en": {Tier.blue: "BLUE", Tier.yellow: "YELLOW", Tier.orange: "ORANGE", Tier.red: "RED"},
}
_HAZARD = {
    "zh-CN": {"rainstorm": "暴雨", "gale": "大风", "typhoon": "台风", "heat": "高温", "gas": "燃气泄漏",
              "flood": "河道水位超警"},
    "en": {"rainstorm": "rainstorm", "gale": "gale", "typhoon": "typhoon", "heat": "high temperature",
           "gas": "gas leak", "flood": "river above warning level"},
}


def hazard_name(hazard: str, language: str) -> str:
    return _HAZARD["en" if language.startswith("en") else "zh-CN"].get(hazard, hazard)


def short_ref(alert: AlertVersion) -> str:
    """A reference a recipient can quote in a reply (the CAP identifier is too long)."""
    return short_ref_of(alert.alert_id, alert.version)


def short_ref_of(alert_id: str, version: int) -> str:
    """Five base32 characters of a hash of the id (ids share their time suffix) + the version."""
    digest = hashlib.blake2b(alert_id.encode(), digest_size=5).digest()
    return f"{base64.b32encode(digest).decode()[:5]}v{version}"


def render_text(alert: AlertVersion, language: str, area_name: str) -> str:
    lang = language if language in _TIER else "zh-CN"
    hazard = _HAZARD[lang].get(alert.hazard, alert.hazard)
    ref = short_ref(alert)
    until = alert.expires.strftime("%H:%M UTC")
    if alert.msg_type == "Cancel":
        if lang == "en":
            return f"[All clear] {hazard} warning for {area_name} cancelled. Ref {ref}"
        return f"【解除】{area_name}{hazard}预警已解除。编号{ref}"
    tier = _TIER[lang][alert.tier]
    if lang == "en":
        return f"[{tier} warning] {hazard} in {area_name}, valid until {until}. Reply 1 to confirm. Ref {ref}"
    return f"【{tier}预警】{area_name}发布{hazard}{tier}预警，有效至{until}。回复1确认。编号{ref}"


def escalation_text(alert: AlertVersion, language: str, area_name: str, minutes: int) -> str:
    """To the next level up when nobody acknowledged in time."""
    lang = language if language in _TIER else "zh-CN"
    hazard = _HAZARD[lang].get(alert.hazard, alert.hazard)
    tier = _TIER[lang][alert.tier]
    ref = short_ref(alert)
    if lang == "en":
        return (f"[Escalation] {tier} {hazard} warning for {area_name} unacknowledged for {minutes} min. "
                f"Reply 1 to confirm. Ref {ref}")
    return f"【升级提醒】{area_name}{hazard}{tier}预警已{minutes}分钟无人确认，请立即处置。回复1确认。编号{ref}"
