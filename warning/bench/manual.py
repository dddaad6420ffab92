"""Scenario `manual`: warnings issued by hand, under the shipped release policy. An officer
POSTs an orange alert for one grid (staff: the district duty officer, by SMS to a local
sink; residents: 20 of the grid's, by push); a second officer approves it. Measured from
the start of the officer's POST to the first provider handoff (the staff SMS), and from
the start of the approval's POST to the first resident's handoff — the sink's receive
times, so both include the API, the Kafka hop to the lifecycle agent, its fan-out and a
consumer's first batch."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx
import orjson

from warning import redis_client
from warning.bench import gridworld
from warning.bench.gridworld import BENCH_DIR, percentile, sample
from warning.bench.residents import arrivals, poll_until, resident_pipeline
from warning.config import Settings
from warning.keys import Keys
from warning.response.tokens import Principal, TokenStore
from warning.runner import free_port, wait_http
from warning.targeting.importer import import_recipients

SAMPLES = 40
RESIDENTS = 20
GAP_S = 0.3


def _tokens(settings: Settings) -> dict[str, str]:
    async def create() -> dict[str, str]:
        client = redis_client.connect(settings.redis_url)
        try:
            store = TokenStore(client, Keys(settings.redis_prefix))
            return {who: await store.create(Principal(id=who, role="officer", level="district", area="440305"))
                    for who in ("bench-author", "bench-approver")}
        finally:
            await client.aclose()

    return asyncio.run(create())


def _district_officer(settings: Settings) -> None:
    path = BENCH_DIR / "manual-officer.jsonl"
    path.write_bytes(orjson.dumps({"id": "off-bench", "role": "officer", "level": "district",
                                   "jurisdiction": "440305", "phone": "+8610000009999"}) + b"\n")
    client = redis_client.connect_sync(settings.redis_url)
    try:
        import_recipients(client, Keys(settings.redis_prefix), path)
    finally:
        client.close()


def _first(sink_dir: Any, channel: str, alert_id: str, staff: bool) -> float | None:
    for at, delivery in arrivals(sink_dir / f"{channel}.jsonl").get(alert_id, []):
        if ("#approve" not in delivery) and (("off-bench" in delivery) == staff):
            return at
    return None


def _wait(sink_dir: Any, channel: str, alert_id: str, staff: bool, procs: Any, timeout: float = 60) -> float:
    return poll_until(f"the {'staff' if staff else 'resident'} handoff of {alert_id}",
                      lambda: _first(sink_dir, channel, alert_id, staff), timeout, procs, every=0.005)


def scenario(base: Settings, run: int, samples: int = SAMPLES) -> dict[str, Any]:
    with resident_pipeline(base, "manual", run, samples + 1, RESIDENTS, consumers=1, release_policy_file=None,
                           api_port=free_port()) as (settings, procs):
        _district_officer(settings)
        procs.start("sms-0", "consumer", "sms")
        procs.start("api", "api")
        wait_http(f"{settings.api_url}/healthz", procs)
        tokens = _tokens(settings)
        issue_ms: list[float] = []
        approve_ms: list[float] = []
        with httpx.Client(base_url=settings.api_url, timeout=30) as http:
            for i in range(samples + 1):  # the first one warms every hop and is not counted
                body = {"hazard": "rainstorm", "tier": "orange", "areas": [gridworld.grid_id(i)]}
                started = time.time()
                author = {"Authorization": f"Bearer {tokens['bench-author']}"}
                issued = http.post("/v1/alerts", json=body, headers=author)
                if issued.status_code != 201 or issued.json()["status"] != "pending_approval":
                    raise RuntimeError(f"issue refused: {issued.status_code} {issued.text}")
                alert_id = issued.json()["alert_id"]
                staff_at = _wait(settings.sink_dir, "sms", alert_id, True, procs)
                approving = time.time()
                approved = http.post(f"/v1/alerts/{alert_id}/approve",
                                     headers={"Authorization": f"Bearer {tokens['bench-approver']}"})
                if approved.status_code != 200:
                    raise RuntimeError(f"approval refused: {approved.status_code} {approved.text}")
                resident_at = _wait(settings.sink_dir, "push", alert_id, False, procs)
                if i:
                    issue_ms.append((staff_at - started) * 1000)
                    approve_ms.append((resident_at - approving) * 1000)
                time.sleep(GAP_S)
    return {"issue_p50_ms": round(statistics.median(issue_ms), 1),
            "issue_p99_ms": round(percentile(issue_ms, 0.99), 1),
            "approval_p50_ms": round(statistics.median(approve_ms), 1),
            "approval_p99_ms": round(percentile(approve_ms, 0.99), 1),
            "samples": len(issue_ms), "residents_per_alert": RESIDENTS, "issue_samples_ms": sample(issue_ms),
            "approval_samples_ms": sample(approve_ms)}
