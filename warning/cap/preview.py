"""What a valid CAP message will drive, told to its publisher at once (pure).

The ingest API accepts a schema-valid message with 202, and the CAP agent decides later;
a message whose event or area the pack does not map would then be refused (or reach only
the city duty officers) with nobody at the publisher's end any the wiser. The API runs the
same decision first and returns these sentences in its ``warnings``.
"""

from __future__ import annotations

from warning.areas import covers
from warning.cap.model import CapMessage
from warning.cap.signals import cap_signals
from warning.rules.pack import CapMapping
from warning.targeting.directory import Directory


def drives_nothing(message: CapMessage, mapping: CapMapping, directory: Directory) -> list[str]:
    decision = cap_signals(message, mapping, {})
    if decision.refused:
        return [f"will drive no alert: {decision.refused}"]
    if decision.skipped:
        return [f"will drive no alert: {decision.skipped}"]
    said: list[str] = []
    for signal in decision.signals:
        if signal.area.startswith("unmapped:"):
            names = sorted({name for info in message.infos for a in info.areas for name, _ in a.geocodes})
            said.append(f"no geocode scheme the pack maps ({', '.join(names) or 'none given'}; "
                        f"known: {', '.join(mapping.geocodes)}): only its polygons and circles place it, "
                        "and without them only the city duty officers are told")
        elif not any(covers(known.code, signal.area) for known in [directory.city, *directory.areas]):
            said.append(f"area {signal.area} is not in this city's directory ({directory.city.code} "
                        f"{directory.city.name}): only the city duty officers will be told")
    return said
