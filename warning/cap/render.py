"""Render an alert version as CAP 1.2 (one <info> per configured language).

A fixed document filled from our own values, so it is written as text: every value
escaped (``xml.sax.saxutils``) after dropping what XML 1.0 cannot carry. A grid webhook
carries the CAP of its alert, so in a burst of small alerts this is paid once per webhook:
~60 µs for an alert in two languages, against ~155 µs building and serialising an lxml
tree (~330 µs in ElementTree), one element at a time being most of both. Nothing is
parsed here (parse.py reads CAP from outside, through defusedxml); tests validate every
rendering against the CAP 1.2 schema and read it back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from warning.cap.parse import NS_12
from warning.models import AlertVersion, Tier
from warning.targeting.templates import DRILL_MARK, Templates, shipped

_CATEGORY = {"gas": "Safety"}  # everything else we raise is meteorological or hydrological
_RESPONSE = {Tier.blue: "Monitor", Tier.yellow: "Prepare", Tier.orange: "Prepare", Tier.red: "Execute"}
# Characters XML 1.0 has no way to write (C0 controls but tab, CR and LF; U+FFFE / U+FFFF;
# lone surrogates): an officer's text or a feed's cause could carry one, and the document
# must still parse at the other end.
_UNWRITABLE = "\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff"
_NOT_XML = re.compile(f"[{_UNWRITABLE}]")
_CARE = re.compile(f"[&<>{_UNWRITABLE}]")  # most values need nothing
_HEAD = f"<?xml version='1.0' encoding='utf-8'?>\n<alert xmlns=\"{NS_12}\">"


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


def _el(tag: str, text: str) -> str:
    if _CARE.search(text):
        text = escape(_NOT_XML.sub("", text))
    return f"<{tag}>{text}</{tag}>"


def render_cap(alert: AlertVersion, style: CapStyle, area_names: dict[str, str] | None = None,
               templates: Templates | None = None) -> bytes:
    zone = ZoneInfo(style.timezone)
    texts = templates or shipped()
    cancel = alert.msg_type == "Cancel"
    out = [_HEAD, _el("identifier", style.identifier_prefix + alert.identifier), _el("sender", style.sender),
           _el("sent", _time(alert.issued_at, zone)), _el("status", "Exercise" if alert.drill else "Actual"),
           _el("msgType", alert.msg_type), "<scope>Public</scope>"]
    if alert.references:
        out.append(_el("references", " ".join(
            f"{style.sender},{style.identifier_prefix}{r.identifier},{_time(r.sent, zone)}" for r in alert.references)))
    # What every <info> shares around its <event>, rendered once.
    category = _el("category", _CATEGORY.get(alert.hazard, "Met"))
    shared = (
        _el("responseType", "AllClear" if cancel else _RESPONSE[alert.tier])
        + _el("urgency", "Past" if cancel else ("Immediate" if alert.tier.rank >= 3 else "Expected"))
        + _el("severity", "Minor" if cancel else style.severity[alert.tier.value])
        + "<certainty>Observed</certainty>"
        + f"<eventCode><valueName>tier</valueName>{_el('value', alert.tier.value)}</eventCode>"
        + _el("effective", _time(alert.caused_at, zone)) + _el("expires", _time(alert.expires, zone)))
    shapes = "".join(
        [_el("polygon", " ".join(f"{lat:g},{lon:g}" for lat, lon in polygon)) for polygon in alert.polygons]
        + [_el("circle", f"{lat:g},{lon:g} {radius_km:g}") for lat, lon, radius_km in alert.circles]
        + [f"<geocode><valueName>GB/T 2260</valueName>{_el('value', code)}</geocode>"
           for code in alert.all_areas if code.isdigit()])
    for language in style.languages:
        name = (area_names or {}).get(language, alert.area)
        out += ["<info>", _el("language", language), category, _el("event", texts.hazard_name(alert.hazard, language)),
                shared]
        written = alert.texts.get(language)
        if written is not None and not cancel:
            mark = DRILL_MARK["en" if language.startswith("en") else "zh-CN"] if alert.drill else ""
            out += [_el("headline", mark + written.headline), _el("description", written.description or alert.cause)]
            if written.instruction:
                out.append(_el("instruction", written.instruction))
        else:
            out.append(_el("headline", texts.render(alert, language, name, style.timezone)))
            if alert.cause:
                out.append(_el("description", alert.cause))
        out += ["<area>", _el("areaDesc", name), shapes, "</area></info>"]
    out.append("</alert>")
    return "".join(out).encode()
