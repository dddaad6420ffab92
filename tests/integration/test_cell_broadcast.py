"""Cell broadcast: fan-out makes one job per area and language for a loud enough alert, and
the CBC adapter (httpx, osmo-cbc's ECBE REST shape) creates, updates, re-channels and
deletes the broadcast in the sandbox's CBC; its 4xx and 5xx are a permanent and a
retryable failure."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from consumers.channels.build import build_notifier
from consumers.notifier import Outcome
from consumers.sinks import read_sink
from tests.conftest import sandbox_running, seeded_container
from warning.bootstrap import Container
from warning.config import Settings
from warning.delivery.broadcast_log import BroadcastLog
from warning.models import AlertVersion, DeliveryJob, Tier
from warning.pipeline.fanout import fan_out
from warning.runner import Processes

pytestmark = pytest.mark.integration
ALERT_ID = "rainstorm-440305001-20261202T020000Z"


def alert(tier: Tier, version: int = 1, drill: bool = False, release: list[str] | None = None) -> AlertVersion:
    now = datetime.now(UTC)
    return AlertVersion(alert_id=("drill-" if drill else "") + ALERT_ID, key="rainstorm:440305001",
                        hazard="rainstorm", area="440305001", tier=tier, version=version, msg_type="Alert",
                        caused_at=now, issued_at=now, expires=now + timedelta(hours=1), drill=drill,
                        release=release or ["staff", "residents"])  # type: ignore[arg-type]


async def test_fan_out_adds_one_broadcast_per_area_and_language_when_the_public_may_be_told(
        container: Container) -> None:
    c = container
    await fan_out(c, alert(Tier.red))
    await fan_out(c, alert(Tier.red, drill=True))  # the drill audience has no residents: no broadcast
    await fan_out(c, alert(Tier.orange).model_copy(update={"alert_id": "held", "release": ["staff"]}))
    await c.store.queue.ensure_group("cell_broadcast")
    claimed = await c.store.queue.read("cell_broadcast", "t", 100, block_ms=100)
    assert sorted((x.job.alert_id, x.job.recipient, x.job.address, x.job.language) for x in claimed) == [
        (ALERT_ID, "area:440305001:en", "440305001", "en"), (ALERT_ID, "area:440305001:zh-CN", "440305001", "zh-CN")]
    zh = next(x.job for x in claimed if x.job.language == "zh-CN")
    assert zh.text.startswith("【红色预警】南头街道发布暴雨红色预警") and zh.fallback == []
    assert await fan_out(c, alert(Tier.yellow)) >= 0  # below the broadcast tiers: nothing new to broadcast …
    assert len(await c.store.queue.read("cell_broadcast", "t", 100, block_ms=100)) == 0
    await fan_out(c, alert(Tier.yellow, version=2))  # … unless it was broadcast: then it follows the alert
    assert {x.job.version for x in await c.store.queue.read("cell_broadcast", "t", 100, block_ms=100)} == {2}


@pytest.fixture
def sandboxed(settings: Settings) -> Settings:
    return settings.model_copy(update={"providers": "sandbox", "provider_timeout_s": 2.0})


@pytest.fixture
def cbc(sandboxed: Settings, tmp_path: Path) -> Iterator[Processes]:
    with sandbox_running(sandboxed, tmp_path / "logs") as procs:
        yield procs


@pytest.fixture
async def sandbox_container(sandboxed: Settings) -> AsyncIterator[Container]:
    async with seeded_container(sandboxed) as c:
        yield c


def job(version: int, tier: Tier, language: str = "zh-CN", msg_type: str = "Alert") -> DeliveryJob:
    now = time.time()
    return DeliveryJob(alert_id=ALERT_ID, version=version, tier=tier, msg_type=msg_type,  # type: ignore[arg-type]
                       channel="cell_broadcast", recipient=f"area:440305001:{language}", address="440305001",
                       language=language, text=f"v{version} {tier.value} {language}", expires=now + 3600,
                       issued_at=now)


async def test_create_update_rechannel_delete_and_refusals(cbc: Processes, sandbox_container: Container) -> None:
    c = sandbox_container
    base = c.settings.sandbox_url
    steps = [[job(1, Tier.orange), job(1, Tier.orange, "en")], [job(1, Tier.orange)],  # a retry: the same message
             [job(2, Tier.orange)], [job(3, Tier.red)], [job(4, Tier.none, msg_type="Cancel")]]
    results = []
    for batch in steps:
        notifier = build_notifier("cell_broadcast", c)
        try:
            results.append(await notifier.send_batch(batch))
        finally:
            await notifier.close()
    assert all(r.outcome is Outcome.delivered for rs in results for r in rs)
    got = [(m["op"], m["message_id"], m.get("update_nr"), m.get("text")) for m in
           read_sink(c.settings.sink_dir / "cell_broadcast.jsonl")]
    assert sorted(got[:2]) == [("create", 4373, 0, "v1 orange zh-CN"), ("create", 4386, 0, "v1 orange en")]
    assert got[2:] == [("update", 4373, 0, "v1 orange zh-CN"),  # the retry: same serial, same update number
                   ("update", 4373, 1, "v2 orange zh-CN"),  # an update: the next update number
                   ("delete", 4373, None, None), ("create", 4371, 0, "v3 red zh-CN"),  # orange -> red: new channel
                   ("delete", 4371, None, None)]  # the Cancel
    shown = await BroadcastLog(c.redis, c.keys).of_alert(ALERT_ID)
    assert [(b["language"], b["message_id"], bool(b.get("deleted_at"))) for b in shown] == [
        ("en", 4386, False), ("zh-CN", 4371, True)]
    async with httpx.AsyncClient() as http:
        await http.post(f"{base}/cbc/sandbox/fail", params={"status": 503})
        await http.post(f"{base}/cbc/sandbox/fail", params={"status": 400})
    notifier = build_notifier("cell_broadcast", c)
    try:
        (unavailable,) = await notifier.send_batch([job(5, Tier.red, "en")])
        (refused,) = await notifier.send_batch([job(5, Tier.red, "en")])
    finally:
        await notifier.close()
    assert unavailable.outcome is Outcome.retryable and unavailable.reason.startswith("cbc DELETE 503")
    assert refused.outcome is Outcome.permanent and refused.reason.startswith("cbc DELETE 400")
