"""Scenario `smpp`: SMS over SMPP 3.4 to the sandbox SMSC (smpp34 on both ends).

Drain: 20,000 queued red SMS through one gateway with a window of 10, then of 50 — the
consumer (Worker + SmppSms, in this process) against the SMSC (`warning sandbox`, its own
process), every submit asking for a receipt, the receipts settling deliveries as they come.
Then 100,000 recipients split over the three carrier gateways by 号段: the time from the
start to 99 % handed off (the SMSC's receive times). The gateways' token buckets are set
far above the drain so the figures are the protocol's and the host's; a carrier's own
limit (Jiangsu's warning channel: 5,000-8,000 SMS/s) is what ``rate_per_s`` is set to live.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

from consumers.channels.build import build_notifier
from consumers.channels.smpp_sms import SmppSms
from consumers.sinks import read_sink
from consumers.worker import Worker
from warning.bench.gridworld import BENCH_DIR, percentile
from warning.bench.harness import drop_namespace, namespace
from warning.bootstrap import bootstrap
from warning.config import Settings
from warning.delivery.receipts import Receipts
from warning.models import DeliveryJob, Tier
from warning.runner import Processes, env_for, free_port, wait_http

DRAIN_JOBS = 20_000
CITY_JOBS = 100_000
PREFIXES = ("+86138", "+86130", "+86189")  # China Mobile, China Unicom, China Telecom
TEXT = "【红色预警】南头街道发布暴雨红色预警，停课停业，留在安全场所，远离河道。回复1确认。编号BENCHv1"


def _gateways(path: Path, window: int, three: bool) -> Path:
    names = ("cmcc", "cucc", "ctcc") if three else ("cmcc",)
    lines = ["default: cmcc", "gateways:"]
    for name, prefix in zip(names, PREFIXES, strict=False):
        lines.append(f"  - {{name: {name}, system_id: warning-{name}, window: {window}, rate_per_s: 1000000, "
                     f"prefixes: ['{prefix}']}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _jobs(n: int, prefixes: tuple[str, ...], tag: str) -> list[DeliveryJob]:
    """Numbers ending in 5: none of the sandbox SMSC's fault numbers."""
    now = time.time()
    return [DeliveryJob(alert_id=f"bench-smpp-{tag}", version=1, tier=Tier.red, msg_type="Alert", channel="sms",
                        recipient=f"r{i}", address=f"{prefixes[i % len(prefixes)]}{i:07d}5", text=TEXT,
                        expires=now + 3600, issued_at=now) for i in range(n)]


async def _drain(settings: Settings, jobs: list[DeliveryJob]) -> tuple[float, float]:
    """(seconds to hand every job to the SMSC, when it started); the receipts are not awaited."""
    c = bootstrap(settings, logging=False)
    try:
        await c.store.queue.enqueue(jobs, batch=5000)
        sms = build_notifier("sms", c, Receipts(c.store, None))
        assert isinstance(sms, SmppSms)
        await sms.start()
        for session in sms.sessions.values():
            await session.bound(wait_s=10)
        started = time.time()
        try:
            await Worker(c.store, sms, batch=1000, receipt_timeout_s=600).run(asyncio.Event(), burst=True)
        finally:
            await sms.close()
        return time.time() - started, started
    finally:
        await c.redis.aclose()


def scenario(base: Settings, run: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, window, three, n in (("window10", 10, False, DRAIN_JOBS), ("window50", 50, False, DRAIN_JOBS),
                                    ("city", 50, True, CITY_JOBS)):
        sink = BENCH_DIR / f"smpp-{label}-{run}"
        shutil.rmtree(sink, ignore_errors=True)
        settings = namespace(base, f"smpp{label}", run, providers="sandbox", sms_provider="smpp",
                             sandbox_port=free_port(), sandbox_smpp_port=free_port(), sink_dir=sink,
                             smpp_gateways_file=_gateways(BENCH_DIR / f"smpp-{label}.yaml", window, three))
        with Processes(BENCH_DIR / f"smpp-logs-{label}-{run}", env=env_for(settings)) as procs:
            procs.start("sandbox", "sandbox")
            wait_http(f"{settings.sandbox_url}/healthz", procs)
            try:
                seconds, started = asyncio.run(_drain(settings, _jobs(n, PREFIXES if three else PREFIXES[:1], label)))
            finally:
                drop_namespace(settings)
        received = sorted(float(str(m["received_at"])) - started for m in read_sink(sink / "sms.jsonl"))
        assert len(received) >= n, f"the SMSC took {len(received)} of {n}"
        if three:
            out["all99_s"] = round(percentile(received, 0.99), 2)
            out["all50_s"] = round(percentile(received, 0.50), 2)
            out["city_per_s"] = round(n / seconds)
        else:
            out[f"per_s_{label}"] = round(n / seconds)
    return out
