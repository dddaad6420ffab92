"""Render an alert version as CAP 1.2 (one <info> per configured language).

lxml, not ElementTree: the standard library serialises in Python, element by element
(~250 µs of a ~320 µs rendering); lxml builds and serialises in libxml2. A grid webhook
carries the CAP of its alert, so in a burst of small alerts this is paid once per webhook.
Rendering only builds a tree from our own values — nothing is parsed here (parse.py reads
CAP from outside, through defusedxml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from lxml import etree

from warning.cap.parse import NS_12
from warning.models import AlertVersion, Tier
from warning.targeting.templates import DRILL_MARK, Templates, shipped

_CATEGORY = {"gas": "Safety"}  # everything else we raise is meteorological or hydrological
_RESPONSE = {Tier.blue: "Monitor", Tier.yellow: "Prepare", Tier.orange: "Prepare", Tier.red: "Execute"}


@dataclass(frozen=True)
class CapStyle:
    sender: str = "warning@early-warning.local"
    identifier_prefix: str = ""
    languages: tuple[str, ...] = ("zh-CN", "en")
    timezone: str = "Asia/Shanghai"
    severity: dict[str, str] = field(default_factory=lambda: {
        "blue": "Minor", "yellow": "Moderate", "orange": "Severe", "red": "Extreme"})


def _time(value: datetime, zone: ZoneInfo) -> str:
    # CAP 1.2 wants seconds precision and an explicit offset ("Z" is not allowed).
    return value.astimezone(zone).replace(microsecond=0).isoformat()


def render_cap(alert: AlertVersion, style: CapStyle, area_names: dict[str, str] | None = None,
               templates: Templates | None = None) -> bytes:
    zone = ZoneInfo(style.timezone)
    texts = templates or shipped()

    def sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
        el = etree.SubElement(parent, f"{{{NS_12}}}{tag}")
        if text is not None:
            el.text = text
        return el

    root = etree.Element(f"{{{NS_12}}}alert", nsmap={None: NS_12})  # type: ignore[dict-item]  # None: the default namespace (lxml-stubs type it as str)
    sub(root, "identifier", style.identifier_prefix + alert.identifier)
    sub(root, "sender", style.sender)
    sub(root, "sent", _time(alert.issued_at, zone))
    sub(root, "status", "Exercise" if alert.drill else "Actual")
    sub(root, "msgType", alert.msg_type)
    sub(root, "scope", "Public")
    if alert.references:
        sub(root, "references", " ".join(
            f"{style.sender},{style.identifier_prefix}{r.identifier},{_time(r.sent, zone)}" for r in alert.references))
    cancel = alert.msg_type == "Cancel"
    for language in style.languages:
        name = (area_names or {}).get(language, alert.area)
        info = sub(root, "info")
        sub(info, "language", language)
        sub(info, "category", _CATEGORY.get(alert.hazard, "Met"))
        sub(info, "event", texts.hazard_name(alert.hazard, language))
        sub(info, "responseType", "AllClear" if cancel else _RESPONSE[alert.tier])
        sub(info, "urgency", "Past" if cancel else ("Immediate" if alert.tier.rank >= 3 else "Expected"))
        sub(info, "severity", "Minor" if cancel else style.severity[alert.tier.value])
        sub(info, "certainty", "Observed")
        code = sub(info, "eventCode")
        sub(code, "valueName", "tier")
        sub(code, "value", alert.tier.value)
        sub(info, "effective", _time(alert.caused_at, zone))
        sub(info, "expires", _time(alert.expires, zone))
        written = alert.texts.get(language)
        if written is not None and not cancel:
            mark = DRILL_MARK["en" if language.startswith("en") else "zh-CN"] if alert.drill else ""
            sub(info, "headline", mark + written.headline)
            sub(info, "description", written.description or alert.cause)
            if written.instruction:
                sub(info, "instruction", written.instruction)
        else:
            sub(info, "headline", texts.render(alert, language, name, style.timezone))
            if alert.cause:
                sub(info, "description", alert.cause)
        area = sub(info, "area")
        sub(area, "areaDesc", name)
        for polygon in alert.polygons:
            sub(area, "polygon", " ".join(f"{lat:g},{lon:g}" for lat, lon in polygon))
        for lat, lon, radius_km in alert.circles:
            sub(area, "circle", f"{lat:g},{lon:g} {radius_km:g}")
        for code_value in alert.all_areas:
            if code_value.isdigit():
                geocode = sub(area, "geocode")
                sub(geocode, "valueName", "GB/T 2260")
                sub(geocode, "value", code_value)
    return bytes(etree.tostring(root, encoding="utf-8", xml_declaration=True))
