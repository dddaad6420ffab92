"""Closed alerts on real Redis: out of the active list at once, archived with their report
after the grace period, queryable (filtered, paged) after their live keys are gone."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from warning.bootstrap import Container
from warning.models import AlertVersion, Reference, Tier
from warning.readmodel import active_alerts
from warning.response.history import ARCHIVE_AFTER_S, archive_due, archived, closed_alerts

pytestmark = pytest.mark.integration


def version(alert_id: str, hazard: str, area: str, n: int, tier: Tier, at: datetime) -> AlertVersion:
    return AlertVersion(alert_id=alert_id, key=f"{hazard}:{area}", hazard=hazard, area=area, tier=tier, version=n,
                        msg_type="Cancel" if tier is Tier.none else ("Alert" if n == 1 else "Update"),
                        references=[Reference(identifier=f"{alert_id}.v1", sent=at)] if n > 1 else [],
                        caused_at=at, issued_at=at, expires=at + timedelta(hours=6), cause="test")


async def test_closed_alerts_are_kept_with_their_report(container: Container) -> None:
    c = container
    now = datetime.now(UTC)
    long_ago, recently = now - timedelta(seconds=ARCHIVE_AFTER_S + 100), now - timedelta(seconds=5)
    await c.store.alerts.record_alerts([
        version("gas-a", "gas", "440305001", 1, Tier.red, long_ago - timedelta(minutes=5)),
        version("gas-a", "gas", "440305001", 2, Tier.none, long_ago),          # cancelled 11 min ago
        version("rain-b", "rainstorm", "440305002", 1, Tier.orange, recently - timedelta(minutes=1)),
        version("rain-b", "rainstorm", "440305002", 2, Tier.none, recently),  # cancelled just now
        version("gale-c", "gale", "440305", 1, Tier.yellow, now),             # still active
    ])
    assert [a["alert_id"] for a in await active_alerts(c.store)] == ["gale-c"]
    page, total = await closed_alerts(c)
    assert total == 2 and [(a["alert_id"], a["state"], a["version"]) for a in page] == [
        ("rain-b", "cancelled", 2), ("gas-a", "cancelled", 2)]  # newest first

    assert await archive_due(c, time.time()) == 1  # only what closed more than ARCHIVE_AFTER_S ago
    kept = await archived(c, "gas-a")
    assert kept["closed_at"] == pytest.approx(long_ago.timestamp())
    assert [v["tier"] for v in kept["detail"]["versions"]] == ["red", "none"]
    assert kept["report"]["alert_id"] == "gas-a"
    ttl = await c.redis.ttl(c.keys.archived("gas-a"))
    assert 89 * 86400 < ttl <= 90 * 86400  # WARNING_HISTORY_DAYS

    await c.redis.delete(c.keys.alert("gas-a"))  # its live keys expire after a week; the history stays
    page, total = await closed_alerts(c, hazard="gas")
    assert total == 1 and page[0]["alert_id"] == "gas-a" and page[0]["hazard"] == "gas"
    assert [a["alert_id"] for a in (await closed_alerts(c, area="440305002"))[0]] == ["rain-b"]
    assert (await closed_alerts(c, limit=1, offset=1))[0][0]["alert_id"] == "gas-a"
    assert (await closed_alerts(c, since=now.timestamp() - 60))[1] == 1  # closed in the last minute: rain-b
    assert await archive_due(c, time.time()) == 0  # nothing else is due; archiving is idempotent
