"""Pure targeting: one alert version -> (recipient, channel, address) for the tier's audience."""

from __future__ import annotations

from dataclasses import dataclass

from warning.areas import covers, inside
from warning.models import AlertVersion, Tier
from warning.targeting.directory import Directory, Person


@dataclass(frozen=True)
class Target:
    recipient_id: str
    channel: str
    address: str
    language: str = "zh-CN"




def _personal(person: Person) -> Target | None:
    """The person's first channel they have an address for (fallback is a later stage)."""
    for channel in person.channels:
        address = person.phone if channel == "sms" else person.push_token
        if address:
            return Target(person.id, channel, address, person.language)
    return None


def targets_for(directory: Directory, alert: AlertVersion, audience_tier: Tier | None = None) -> list[Target]:
    """Everyone the tier's audience policy calls for in the alert's area, each once.

    ``audience_tier`` overrides the alert's tier: a Cancel (tier none) must reach everyone
    the alert's loudest version reached, so the caller passes that tier.
    """
    tier = audience_tier or alert.tier
    if tier is Tier.none:
        tier = Tier.blue
    policy = directory.audience.get(tier)
    if policy is None:
        return []
    area = alert.area
    grids = [g for g in directory.grids if inside(g.id, area)]
    grid_ids = {g.id for g in grids}
    chosen: dict[tuple[str, str], Target] = {}

    def add(target: Target | None) -> None:
        if target is not None:
            chosen.setdefault((target.recipient_id, target.channel), target)

    if policy.grid_endpoints:
        for grid in grids:
            if grid.endpoint:
                add(Target(f"grid:{grid.id}", "grid", grid.endpoint))
    for person in directory.people:
        if person.role == "grid_worker" and policy.grid_workers and grid_ids.intersection(person.grids):
            add(_personal(person))
        elif person.role == "officer" and person.level in policy.officers:
            if covers(person.jurisdiction or "", area):
                add(_personal(person))
        elif person.role == "resident" and person.grid in grid_ids and (
                policy.residents == "all" or (policy.residents == "opted_in" and person.opted_in)):
            add(_personal(person))
    if not chosen:
        # No grid or officer matches (an unmapped station, say): never drop the warning,
        # tell the city duty officers.
        for person in directory.people:
            if person.role == "officer" and person.level == "city":
                add(_personal(person))
    return list(chosen.values())
