"""CAP messages as typed records (what the pipeline needs of them), read from a parsed root."""

from __future__ import annotations

from datetime import datetime
from xml.etree.ElementTree import Element

from pydantic import BaseModel, Field

from warning.cap.parse import NS_11, NS_12


class CapReference(BaseModel):
    sender: str
    identifier: str
    sent: datetime


class CapArea(BaseModel):
    description: str
    polygons: list[list[tuple[float, float]]] = Field(default_factory=list)
    circles: list[tuple[float, float, float]] = Field(default_factory=list)  # lat, lon, radius km
    geocodes: list[tuple[str, str]] = Field(default_factory=list)  # (valueName, value)


class CapInfo(BaseModel):
    language: str = "en-US"
    event: str
    categories: list[str] = Field(default_factory=list)
    urgency: str
    severity: str
    certainty: str
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    headline: str = ""
    description: str = ""
    sender_name: str = ""
    event_codes: list[tuple[str, str]] = Field(default_factory=list)
    areas: list[CapArea] = Field(default_factory=list)


class CapMessage(BaseModel):
    version: str
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    scope: str
    references: list[CapReference] = Field(default_factory=list)
    infos: list[CapInfo] = Field(default_factory=list)

    def info_for(self, languages: tuple[str, ...] = ("zh-CN", "zh", "en")) -> CapInfo | None:
        """The info block in the first preferred language present, else the first one."""
        for wanted in languages:
            for info in self.infos:
                if info.language.lower().startswith(wanted.lower()):
                    return info
        return self.infos[0] if self.infos else None


def _q(ns: str, path: str) -> str:
    return "/".join(f"{{{ns}}}{part}" for part in path.split("/"))


def _text(el: Element, ns: str, path: str, default: str = "") -> str:
    found = el.find(_q(ns, path))
    return (found.text or "").strip() if found is not None else default


def _time(el: Element, ns: str, path: str) -> datetime | None:
    value = _text(el, ns, path)
    return datetime.fromisoformat(value) if value else None


def _pairs(el: Element, ns: str, path: str) -> list[tuple[str, str]]:
    return [(_text(p, ns, "valueName"), _text(p, ns, "value")) for p in el.iterfind(_q(ns, path))]


def _area(el: Element, ns: str) -> CapArea:
    polygons = [[(float(a), float(b)) for a, b in (pt.split(",") for pt in (p.text or "").split())]
                for p in el.iterfind(_q(ns, "polygon"))]
    circles = []
    for c in el.iterfind(_q(ns, "circle")):
        centre, radius = (c.text or "").split()
        lat, lon = centre.split(",")
        circles.append((float(lat), float(lon), float(radius)))
    return CapArea(description=_text(el, ns, "areaDesc"), polygons=polygons, circles=circles,
                   geocodes=_pairs(el, ns, "geocode"))


def read_message(root: Element, version: str) -> CapMessage:
    """Build the record from a root that :func:`validate_cap` accepted."""
    ns = NS_12 if version == "1.2" else NS_11
    references = []
    for triple in _text(root, ns, "references").split():
        sender, identifier, sent = triple.split(",")
        references.append(CapReference(sender=sender, identifier=identifier, sent=datetime.fromisoformat(sent)))
    infos = [
        CapInfo(language=_text(i, ns, "language", "en-US"), event=_text(i, ns, "event"),
                categories=[(c.text or "").strip() for c in i.iterfind(_q(ns, "category"))],
                urgency=_text(i, ns, "urgency"), severity=_text(i, ns, "severity"),
                certainty=_text(i, ns, "certainty"), effective=_time(i, ns, "effective"),
                onset=_time(i, ns, "onset"), expires=_time(i, ns, "expires"), headline=_text(i, ns, "headline"),
                description=_text(i, ns, "description"), sender_name=_text(i, ns, "senderName"),
                event_codes=_pairs(i, ns, "eventCode"), areas=[_area(a, ns) for a in i.iterfind(_q(ns, "area"))])
        for i in root.iterfind(_q(ns, "info"))
    ]
    return CapMessage(version=version, identifier=_text(root, ns, "identifier"), sender=_text(root, ns, "sender"),
                      sent=datetime.fromisoformat(_text(root, ns, "sent")), status=_text(root, ns, "status"),
                      msg_type=_text(root, ns, "msgType"), scope=_text(root, ns, "scope"),
                      references=references, infos=infos)
