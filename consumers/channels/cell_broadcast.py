"""Cell broadcast to a CBC over its ECBE REST interface (osmo-cbc's shape), one job per
alert version, area and language.

A version in a broadcast tier is POSTed with the next update number of that area's
broadcast (a retry of the same version reuses its number: the CBC sees the same message);
when the tier's message identifier changes (orange -> red) the old one is deleted first; a
Cancel, or a version below the broadcast tiers, deletes it. What was broadcast is kept per
alert in Redis (broadcast_log.py) for the next version and the reach report.
A CBC answering 4xx is a permanent failure (dead-lettered, logged with its body); 5xx and
timeouts are retried by the worker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx
import structlog

from consumers.notifier import Result, delivered, permanent, retryable
from warning.delivery.broadcast_log import BroadcastLog
from warning.delivery.cell_broadcast import CHANNEL, BroadcastConfig, broadcasts_until, cbc_message, message_code
from warning.models import DeliveryJob, Tier, is_drill

log = structlog.get_logger()
API = "/api/ecbe/v1/message"


class CbcRefused(Exception):
    def __init__(self, result: Result) -> None:
        super().__init__(result.reason)
        self.result = result


class CellBroadcast:
    channel = CHANNEL

    def __init__(self, config: BroadcastConfig, tiers: frozenset[Tier], base_url: str, http: httpx.AsyncClient,
                 log_: BroadcastLog) -> None:
        self.config = config
        self.tiers = tiers  # whose audience names cell broadcast: below them a broadcast is deleted
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.broadcasts = log_

    async def send_batch(self, jobs: Sequence[DeliveryJob]) -> list[Result]:
        return list(await asyncio.gather(*(self._send(job) for job in jobs)))

    async def _send(self, job: DeliveryJob) -> Result:
        _, area, language = job.recipient.split(":", 2)
        state = await self.broadcasts.get(job.alert_id, area, language)
        live = job.msg_type != "Cancel" and job.tier in self.tiers
        try:
            if not live:
                if state and not state.get("deleted_at"):
                    await self._delete(job, state, area)
                    state["deleted_at"] = time.time()
                    await self.broadcasts.keep(job.alert_id, job.expires, state)
                return delivered(provider_id="deleted" if state else "nothing broadcast")
            message_id = self.config.message_id(job.tier, is_drill(job.alert_id), language)
            if state and state["message_id"] != message_id and not state.get("deleted_at"):
                await self._delete(job, state, area)  # the tier's channel changed
            if state.get("version") == job.version:
                update = state["update"]  # a retry of the version sent: the same message
            else:
                update = state["update"] + 1 if state and state["message_id"] == message_id else 0
            code = message_code(job.alert_id, area)
            broadcasts = broadcasts_until(self.config, job.expires - time.time())
            body = cbc_message(self.config, message_id=message_id, code=code, update=update, area=area,
                               language=language, text=job.text, tier=job.tier, broadcasts=broadcasts)
            await self._call("POST", self.base_url + API, job, body)
        except CbcRefused as refused:
            return refused.result
        await self.broadcasts.keep(job.alert_id, job.expires, {
            "message_id": message_id, "code": code, "update": update, "version": job.version, "area": area,
            "language": language, "at": time.time(), "repetition_period_s": self.config.repetition_period_s,
            "broadcasts": broadcasts, "tier": job.tier.value})
        log.info("cell_broadcast_sent", alert_id=job.alert_id, delivery_id=job.delivery_id, area=area,
                 message_id=message_id, update=update, broadcasts=broadcasts)
        return delivered(provider_id=f"{message_id}:{code}:{update}")

    async def _delete(self, job: DeliveryJob, state: dict[str, Any], area: str) -> None:
        """osmo-cbc deletes by message identifier alone; a CBC that keeps one per area and
        serial number is told which in the body (osmo-cbc ignores it)."""
        message_id = state["message_id"]
        body: dict[str, Any] = {"serial_nr": {"serial_nr_decoded": {
            "geo_scope": self.config.geo_scope, "msg_code": state["code"], "update_nr": state["update"] % 16}}}
        if self.config.scope == "area":
            body["scope"] = {"scope_area": {"area_code": area}}
        await self._call("DELETE", f"{self.base_url}{API}/{message_id}", job, body, gone_ok=True)
        log.info("cell_broadcast_deleted", alert_id=job.alert_id, delivery_id=job.delivery_id, area=area,
                 message_id=message_id)

    async def _call(self, method: str, url: str, job: DeliveryJob, body: dict[str, Any] | None,
                    gone_ok: bool = False) -> None:
        try:
            response = await self.http.request(method, url, json=body)
        except httpx.HTTPError as exc:
            raise CbcRefused(retryable(f"cbc unreachable: {type(exc).__name__} {exc}")) from exc
        if response.status_code < 300 or (gone_ok and response.status_code == 404):
            return
        reason = f"cbc {method} {response.status_code}: {response.text[:200]}"
        log.warning("cell_broadcast_refused", alert_id=job.alert_id, delivery_id=job.delivery_id, reason=reason)
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise CbcRefused(retryable(reason))
        raise CbcRefused(permanent(reason))

    async def close(self) -> None:
        await self.http.aclose()

