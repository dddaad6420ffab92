"""Operations: liveness, readiness (Kafka and Redis really answer), Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from warning import heartbeat, reach
from warning.api.deps import Runtime, runtime
from warning.config import CHANNELS
from warning.feeds import consumer_lag
from warning.models import WARNING_TIERS

router = APIRouter(tags=["operations"])
log = structlog.get_logger()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (see /readyz for its dependencies)."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(rt: Annotated[Runtime, Depends(runtime)]) -> Response:
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(rt.container.redis.ping(), 2)
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"unreachable: {type(exc).__name__} {exc}"
    try:
        await asyncio.wait_for(rt.producer.client.fetch_all_metadata(), 3)
        checks["kafka"] = "ok"
    except Exception as exc:
        checks["kafka"] = f"unreachable: {type(exc).__name__} {exc}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


_lag_cache: dict[str, Any] = {"at": 0.0, "value": {}}


async def _processes(rt: Runtime) -> list[Any]:
    """Live processes per role (heartbeats), and the provider mode each channel's consumers use."""
    c = rt.container
    alive = GaugeMetricFamily("warning_processes_alive", "Processes of a role with a heartbeat in the last 30 s",
                              labels=["role"])
    for role, n in (await heartbeat.alive(c.redis, c.keys)).items():
        alive.add_metric([role], n)
    modes = GaugeMetricFamily("warning_provider_mode", "1 for the provider mode a channel's consumers use",
                              labels=["channel", "mode"])
    for channel in CHANNELS:
        used = {str(b.get("mode")) for b in await heartbeat.live_beats(c.redis, c.keys, f"consumer-{channel}")}
        for mode in ("live", "sandbox", "sink"):
            modes.add_metric([channel, mode], 1 if mode in used else 0)
    bound = GaugeMetricFamily("warning_smpp_gateway_bound", "SMS consumers with a live bind to each SMPP gateway",
                              labels=["gateway"])
    binds: dict[str, int] = {}
    for b in await heartbeat.live_beats(c.redis, c.keys, "consumer-sms"):
        for gateway, up in dict(b.get("smpp_bound") or {}).items():
            binds[str(gateway)] = binds.get(str(gateway), 0) + int(up)
    for gateway, n in sorted(binds.items()):
        bound.add_metric([gateway], n)
    required = GaugeMetricFamily("warning_live_providers_required", "1 when WARNING_REQUIRE_LIVE_PROVIDERS is set")
    required.add_metric([], 1 if rt.settings.require_live_providers else 0)
    return [alive, modes, bound, required]


@router.get("/metrics", response_class=Response)
async def metrics(rt: Annotated[Runtime, Depends(runtime)]) -> Response:
    c = rt.container
    registry = CollectorRegistry()
    families: list[Any] = []
    depth = GaugeMetricFamily("warning_queue_depth", "Jobs waiting per channel and tier lane",
                              labels=["channel", "tier"])
    oldest = GaugeMetricFamily("warning_queue_oldest_age_seconds", "Age of the oldest queued job",
                               labels=["channel", "tier"])
    dead = GaugeMetricFamily("warning_dead_letters", "Jobs in each channel's dead letters", labels=["channel"])
    for channel in CHANNELS:
        stats = await c.store.queue.queue_stats(channel)
        for tier, lane in stats["lanes"].items():
            depth.add_metric([channel, tier], lane["depth"])
            oldest.add_metric([channel, tier], lane["oldest_age_s"])
        dead.add_metric([channel], stats["dead"])
    families += [depth, oldest, dead, *await _processes(rt)]
    counters = {str(k): int(v) for k, v in (await c.redis.hgetall(c.keys.stats)).items()}
    deliveries = CounterMetricFamily("warning_deliveries", "Delivery status changes (drills apart)",
                                     labels=["channel", "status", "drill"])
    for key, value in counters.items():
        if key.startswith(("deliveries:", "deliveries-drill:")):
            kind, channel, status = key.split(":", 2)
            deliveries.add_metric([channel, status, str(kind.endswith("-drill")).lower()], value)
    escalations = CounterMetricFamily("warning_escalations", "Escalation steps fired")
    escalations.add_metric([], counters.get("escalations", 0))
    knocks = CounterMetricFamily("warning_door_knocks", "Door-knock tasks: residents no channel reached")
    knocks.add_metric([], counters.get("door_knocks", 0))
    families += [deliveries, escalations, knocks]
    reach_family = HistogramMetricFamily("warning_seconds_to_reach", "Alert issue to provider handoff",
                                         labels=["channel", "tier", "drill"])
    for channel, tier, drill in [(ch, t.value, d) for ch in CHANNELS for t in WARNING_TIERS for d in (False, True)]:
        raw = await c.redis.hgetall(c.keys.reach_all(channel, tier, drill))
        if not raw and drill:
            continue  # live series are always there (empty ones too); a drill's once it happened
        histogram = {int(k): int(v) for k, v in raw.items()}
        cumulative, buckets, total_s = 0, [], 0.0
        for bucket in sorted(histogram):
            cumulative += histogram[bucket]
            edge = reach.upper_edge_s(bucket)
            buckets.append((f"{edge:g}", cumulative))
            total_s += histogram[bucket] * edge
        buckets.append(("+Inf", cumulative))
        reach_family.add_metric([channel, tier, str(drill).lower()], buckets, total_s)
    families.append(reach_family)
    if time.monotonic() - _lag_cache["at"] > 10:
        try:
            _lag_cache["value"] = await asyncio.to_thread(consumer_lag, rt.settings)
        except Exception as exc:  # Kafka down: readiness says so; metrics still serve the rest
            log.warning("pipeline_lag_unavailable", error=f"{type(exc).__name__}: {exc}")
            _lag_cache["value"] = {}
        _lag_cache["at"] = time.monotonic()
    lag = GaugeMetricFamily("warning_pipeline_lag_messages", "Messages not yet processed by the Faust worker",
                            labels=["topic"])
    for topic, value in sorted(_lag_cache["value"].items()):
        lag.add_metric([topic], value)
    families.append(lag)

    class Snapshot:
        def collect(self) -> list[Any]:
            return families

    registry.register(Snapshot())
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
