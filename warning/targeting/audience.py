"""Pure targeting: the tier's audience policy over the people of the grids an alert touches."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from warning.areas import covers
from warning.models import AlertVersion, Tier
from warning.targeting.directory import Audience
from warning.targeting.grids import Grid

Record = dict[str, Any]


@dataclass(frozen=True)
class Target:
    recipient_id: str
    channel: str
    address: str
    language: str = "zh-CN"
    fallback: tuple[tuple[str, str], ...] = ()  # the person's next channels, in their order


_ADDRESS_FIELD = {"sms": "phone", "push": "push_token"}


def personal(record: Record) -> Target | None:
    """The person's first channel they have an address for; the others are the fallback."""
    usable = []
    for channel in record.get("channels") or ("sms",):
        address = record.get(_ADDRESS_FIELD.get(channel, ""))
        if address:
            usable.append((channel, address))
    if not usable:
        return None
    channel, address = usable[0]
    return Target(record["id"], channel, address, record.get("language", "zh-CN"), tuple(usable[1:]))


def narrowed(policy: Audience, alert: AlertVersion, drill_roles: Sequence[str]) -> Audience:
    """The tier's audience cut to what this version may reach now: the segments released
    (the rest wait for an approver), an officer's audience override, a drill's audience
    (residents only when a drill names them)."""
    roles = alert.audience if alert.audience is not None else (list(drill_roles) if alert.drill else None)
    cut = policy.model_copy()
    if roles is not None:
        cut.grid_workers = policy.grid_workers and "grid_worker" in roles
        cut.grid_endpoints = policy.grid_endpoints and "grid_endpoint" in roles
        cut.officers = policy.officers if "officer" in roles else []
        if "resident" not in roles:
            cut.residents = "none"
        elif alert.audience is not None and "resident" in alert.audience and policy.residents == "none":
            cut.residents = "all"  # named by hand: the residents of the area, whatever the tier says
    if "staff" not in alert.release:
        cut.grid_workers, cut.grid_endpoints, cut.officers = False, False, []
    if "residents" not in alert.release:
        cut.residents = "none"
    return cut


def select(policy: Audience, area: str | Sequence[str], grids: Iterable[Grid], workers: Iterable[Record],
           officers: Iterable[Record], residents_found: int = 0, fallback: bool = True) -> list[Target]:
    """Grid endpoints, grid workers and officers the policy calls for, each (recipient, channel) once.

    ``workers`` are the people of ``grids``, ``officers`` all of them. Residents are
    too many to pass through here: ``policy.residents`` says which set fan-out reads
    (none, opted_in or all), and ``residents_found`` how many it found. An alert that
    reaches nobody at all (an unmapped area) goes to the city duty officers: a warning is
    never dropped for want of a recipient (``fallback``; not for a version held back from
    its audience, which is not dropped but waiting).
    """
    areas = [area] if isinstance(area, str) else list(area)
    chosen: dict[tuple[str, str], Target] = {}

    def add(target: Target | None) -> None:
        if target is not None:
            chosen.setdefault((target.recipient_id, target.channel), target)

    if policy.grid_endpoints:
        for grid in grids:
            if grid.endpoint:
                add(Target(f"grid:{grid.id}", "grid", grid.endpoint))
    if policy.grid_workers:
        for worker in workers:
            add(personal(worker))
    for officer in officers:
        if officer.get("level") in policy.officers and any(covers(officer.get("jurisdiction", "~"), a)
                                                           for a in areas):
            add(personal(officer))
    if not chosen and not residents_found and fallback:
        for officer in officers:
            if officer.get("level") == "city":
                add(personal(officer))
    return list(chosen.values())


def audience_tier(alert_tier: Tier, loudest: Tier | None, cancel: bool) -> Tier:
    """Whose audience a version goes to: a Cancel reaches everyone the loudest version did."""
    tier = loudest if cancel and loudest else alert_tier
    return Tier.blue if tier is Tier.none else tier
