"""A met bureau's CAP warning -> tier signals for the lifecycle (pure).

Every message of one CAP chain (Alert, its Updates, its Cancel) speaks as one *source*,
named after the chain's first identifier, so an Update changes that source's tier and a
Cancel withdraws it — exactly as a station's readings do. The caller resolves
``references`` to chain roots (kept in Redis) and passes them in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from warning.cap.model import CapMessage
from warning.models import Tier, TierSignal
from warning.rules.pack import CapMapping

DISPATCHED_STATUS = ("Actual", "Exercise")  # an Exercise is a drill: its own alert, the drill audience


@dataclass
class CapDecision:
    signals: list[TierSignal] = field(default_factory=list)
    root: str | None = None  # the chain this message belongs to (to remember for later Updates)
    refused: str | None = None  # why nothing can be done with it (goes to warning.rejected)
    skipped: str | None = None  # valid, deliberately not dispatched (Test, System, Draft …)
    unseen_references: str | None = None  # an Update / Cancel of a chain we never saw (it starts or ends it)


_COLOUR = re.compile(r"(蓝色|黄色|橙色|红色)|\b(blue|yellow|orange|red)\s+(?:warning|alert|signal)",
                     re.IGNORECASE)
_COLOUR_TIERS = {"蓝色": Tier.blue, "黄色": Tier.yellow, "橙色": Tier.orange, "红色": Tier.red,
                 "blue": Tier.blue, "yellow": Tier.yellow, "orange": Tier.orange, "red": Tier.red}


def colour_tier(*texts: str) -> Tier | None:
    """The signal colour a headline or event names (雷电黄色预警, "lightning yellow warning").

    CMA's signals are colours; the national system's severity is often Unknown or one
    step off, so the colour wins where one is named. "Red Flag Warning" names none."""
    for text in texts:
        if match := _COLOUR.search(text or ""):
            return _COLOUR_TIERS[(match.group(1) or match.group(2)).lower()]
    return None


def chain_key(sender: str, identifier: str) -> str:
    return f"{sender},{identifier}"


def cap_signals(message: CapMessage, mapping: CapMapping, roots: dict[str, str],
                languages: tuple[str, ...] = ("zh-CN", "zh", "en")) -> CapDecision:
    """Decide what a CAP message means for our alerts.

    ``roots`` maps ``chain_key(sender, identifier)`` of earlier messages to their chain root.
    """
    if message.status not in DISPATCHED_STATUS:
        return CapDecision(skipped=f"status {message.status}: not dispatched")
    if message.msg_type not in ("Alert", "Update", "Cancel"):
        return CapDecision(skipped=f"msgType {message.msg_type}: nothing to dispatch")
    root = chain_key(message.sender, message.identifier)
    unseen = None
    if message.msg_type != "Alert":
        if not message.references:
            return CapDecision(refused=f"msgType {message.msg_type} without references: "
                                       "cannot tell which alert it changes")
        known = [roots[k] for r in message.references if (k := chain_key(r.sender, r.identifier)) in roots]
        if known:
            root = known[0]
        else:
            # The chain began before we listened (or its first message was lost): the oldest
            # reference is its root, so this Update starts it (this Cancel ends it) and the
            # chain's later messages, which name the same root, land on the same alert.
            first = message.references[0]
            root = chain_key(first.sender, first.identifier)
            unseen = " ".join(r.identifier for r in message.references)
    info = message.info_for(languages)
    if info is None:
        return CapDecision(refused="no <info> block: no event, severity or area to act on")
    hazard = mapping.hazard_of(info.event)
    if hazard is None:
        return CapDecision(refused=f"event {info.event!r} maps to no hazard (rule pack cap.events)")
    tier = Tier.none if message.msg_type == "Cancel" else colour_tier(info.headline, info.event) or \
        mapping.severity_tiers.get(info.severity)
    if tier is None:
        return CapDecision(refused=f"severity {info.severity!r} maps to no tier (rule pack cap.severity_tiers)")
    codes = sorted({code for area in info.areas for name, value in area.geocodes
                    if (code := mapping.area_code(name, value))})
    # No geocode we know: the area is named after the sender and the CAP polygons / circles
    # say which grids it touches (none at all: the city duty officers get it).
    areas = codes or [f"unmapped:{message.sender}"]
    at = info.effective or message.sent
    polygons = [p for a in info.areas for p in a.polygons]
    circles = [c for a in info.areas for c in a.circles]
    signals = [TierSignal(hazard=hazard, area=area, station_id=f"cap:{root}", tier=tier, at=at,
                          rule_id="cap", expires=info.expires, final=message.msg_type == "Cancel",
                          polygons=[] if codes else polygons, circles=[] if codes else circles,
                          drill=message.status == "Exercise")
               for area in areas]
    return CapDecision(signals=signals, root=root, unseen_references=unseen)
