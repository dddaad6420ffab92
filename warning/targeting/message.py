"""Message texts a person reads: a version in one language, from the templates
(warning/targeting/templates.py); escalation reminders; the short reference to quote."""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING

from warning.models import AlertVersion, Tier

if TYPE_CHECKING:
    from warning.targeting.templates import Templates

CITY_TIMEZONE = "Asia/Shanghai"


def _templates(templates: Templates | None) -> Templates:
    from warning.targeting.templates import shipped

    return templates or shipped()


def tier_name(tier: str, language: str) -> str:
    from warning.targeting.templates import TIER_NAMES, language_of

    return TIER_NAMES[language_of(language)].get(Tier(tier), tier)


def hazard_name(hazard: str, language: str, templates: Templates | None = None) -> str:
    return _templates(templates).hazard_name(hazard, language)


def short_ref(alert: AlertVersion) -> str:
    """A reference a recipient can quote in a reply (the CAP identifier is too long)."""
    return short_ref_of(alert.alert_id, alert.version)


def short_ref_of(alert_id: str, version: int) -> str:
    """Five base32 characters of a hash of the id (ids share their time suffix) + the version."""
    digest = hashlib.blake2b(alert_id.encode(), digest_size=5).digest()
    return f"{base64.b32encode(digest).decode()[:5]}v{version}"


def render_text(alert: AlertVersion, language: str, area_name: str, timezone: str = CITY_TIMEZONE,
                templates: Templates | None = None, channel: str = "") -> str:
    """The message a person reads; times in the city's time zone (people read local time)."""
    return _templates(templates).render(alert, language, area_name, timezone, channel)


def escalation_text(alert: AlertVersion, language: str, area_name: str, minutes: int,
                    templates: Templates | None = None) -> str:
    """To the next level up when nobody acknowledged in time."""
    hazard, tier = hazard_name(alert.hazard, language, templates), tier_name(alert.tier, language)
    ref = short_ref(alert)
    if language.startswith("en"):
        return (f"[Escalation] {tier} {hazard} warning for {area_name} unacknowledged for {minutes} min. "
                f"Reply 1 to confirm. Ref {ref}")
    return f"【升级提醒】{area_name}{hazard}{tier}预警已{minutes}分钟无人确认，请立即处置。回复1确认。编号{ref}"
