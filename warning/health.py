"""`warning health ROLE [--ready]`: the liveness and readiness checks an orchestrator calls
in each role's container (exit 0 healthy, 1 not, with one line saying why).

- api: the API's own ``/healthz`` (liveness) or ``/readyz`` (readiness: Redis and Kafka
  really answered);
- worker, consumer-CHANNEL, escalator: this container's process beats in Redis
  (warning/heartbeat.py) within ``ALIVE_S``; a consumer is ready when Redis answers; a
  worker is not healthy when its input lag is above zero and it has taken no event for
  ``STUCK_S`` — up, but taking nothing.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from warning import redis_client
from warning.config import Settings
from warning.heartbeat import ALIVE_S, ROLES, beats_here
from warning.keys import Keys
from warning.redis_client import REDIS_OR_SOCKET_DOWN

STUCK_S = 120.0


@dataclass(frozen=True)
class Health:
    ok: bool
    why: str


async def check(settings: Settings, role: str, ready: bool) -> Health:
    """No bootstrap: a probe needs neither the rule pack nor the grids, only Redis (or the API)."""
    if role == "api":
        return await _api(settings, ready)
    if role not in ROLES:
        return Health(False, f"unknown role {role!r}: api, {', '.join(ROLES)}")
    redis = redis_client.connect(settings.redis_url, decode_responses=True, socket_connect_timeout=3)
    try:
        beats = await asyncio.wait_for(beats_here(redis, Keys(settings.redis_prefix), role), timeout=5)
    except REDIS_OR_SOCKET_DOWN as exc:  # TimeoutError (wait_for's) is an OSError
        shown = redis_client.without_password(settings.redis_url)
        return Health(False, f"Redis at {shown} (WARNING_REDIS_URL) does not answer: {exc}")
    finally:
        await redis.aclose()
    if not beats:
        return Health(False, f"no {role} on this host has beaten in Redis: not started, or not this host's")
    latest = beats[0]
    age = time.time() - float(latest["at"])
    if age > ALIVE_S:
        return Health(False, f"{role} {latest['instance']}: last heartbeat {age:.0f} s ago (more than {ALIVE_S:.0f})")
    if role == "worker":
        return await _worker(settings, latest)
    return Health(True, f"{role} {latest['instance']}: heartbeat {age:.0f} s ago")


async def _worker(settings: Settings, latest: dict[str, object]) -> Health:
    from warning.feeds import consumer_lag

    idle = time.time() - float(str(latest["last_event_at"]))
    if idle < STUCK_S:
        return Health(True, f"worker {latest['instance']}: took an event {idle:.0f} s ago")
    try:
        lag = await asyncio.wait_for(asyncio.to_thread(consumer_lag, settings), timeout=10)
    except Exception as exc:  # Kafka down is not the worker's fault: it waits for Kafka itself
        return Health(True, f"worker {latest['instance']}: idle {idle:.0f} s; lag unreadable ({exc})")
    waiting = sum(lag.values())
    if waiting > 0:
        return Health(False, f"worker {latest['instance']}: {waiting} messages wait on its inputs but it took no "
                             f"event for {idle:.0f} s (up, taking nothing)")
    return Health(True, f"worker {latest['instance']}: idle {idle:.0f} s, nothing waiting")


async def _api(settings: Settings, ready: bool) -> Health:
    url = f"http://127.0.0.1:{settings.api_port}/{'readyz' if ready else 'healthz'}"
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            answer = await http.get(url)
    except httpx.HTTPError as exc:
        return Health(False, f"api at {url} does not answer: {type(exc).__name__} {exc}")
    if answer.status_code != 200:
        return Health(False, f"api at {url}: {answer.status_code} {answer.text[:200]}")
    return Health(True, f"api at {url}: {answer.text[:200]}")
