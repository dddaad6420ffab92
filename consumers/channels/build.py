"""The notifier for a channel, from settings: live provider, sandbox, or local sink."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from consumers.notifier import Notifier
from consumers.sinks import FileSink
from warning.bootstrap import Container
from warning.delivery import providers
from warning.delivery.receipts import Receipts
from warning.models import AlertVersion
from warning.sandbox import credentials


def build_notifier(channel: str, c: Container, receipts: Receipts | None = None) -> Notifier:
    s = c.settings
    mode = s.provider_mode(channel)
    if mode == "sink":
        return FileSink(channel, s.sink_dir)
    if mode == "sandbox":
        credentials.ensure(providers.sandbox_state(s), s.sandbox_url)
    timeout = httpx.Timeout(s.provider_timeout_s)
    if channel == "sms" and s.sms_provider == "smpp":
        from consumers.channels.smpp_receipts import SmppReceipts
        from consumers.channels.smpp_sms import SmppSms

        assert c.smpp is not None  # bootstrap loads it when sms_provider is smpp
        return SmppSms(c.smpp, providers.smpp_endpoints(s, c.smpp), c.store,
                       SmppReceipts(receipts or Receipts(c.store, None)), max_segments=s.sms_max_segments)
    if channel == "sms":
        from consumers.channels.twilio_sms import TwilioSms

        return TwilioSms(providers.twilio_account(s), callback_base=s.api_url, redis=c.redis, keys=c.keys,
                         max_segments=s.sms_max_segments, timeout_s=s.provider_timeout_s)
    if channel == "push":
        from consumers.channels.push import FcmClient, Push, WebPushClient

        account = providers.fcm_service_account_file(s)
        vapid = providers.vapid_key(s)
        fcm = FcmClient(account, providers.fcm_base_url(s), httpx.AsyncClient(timeout=timeout)) if account else None
        web = WebPushClient(vapid, s.vapid_subject, s.provider_timeout_s) if vapid else None
        return Push(fcm, web)
    if channel == "grid":
        from consumers.channels.grid_webhook import GridWebhook

        return GridWebhook(providers.grid_secret(s), AlertLookup(c), lambda url: providers.grid_url(s, url),
                           s.provider_timeout_s)
    if channel == "cell_broadcast":
        from consumers.channels.cell_broadcast import CellBroadcast
        from warning.delivery.broadcast_log import BroadcastLog

        tiers = frozenset(t for t, audience in c.directory.audience.items() if audience.cell_broadcast)
        return CellBroadcast(c.broadcast, tiers, providers.cbc_url(s), httpx.AsyncClient(timeout=timeout),
                             BroadcastLog(c.redis, c.keys))
    raise ValueError(f"unknown channel {channel!r}")


class AlertLookup:
    """Alert fields and CAP 1.2 for grid webhook bodies, rendered once per version.

    A batch's versions are read in one round trip: in a burst of small alerts a batch
    holds as many alerts as jobs, and a read per alert held every webhook back."""

    def __init__(self, c: Container, keep: int = 1000) -> None:
        self.c = c
        self.keep = keep
        self.cache: dict[tuple[str, int], dict[str, Any]] = {}

    async def __call__(self, wanted: Iterable[tuple[str, int]]) -> dict[tuple[str, int], dict[str, Any]]:
        keys = set(wanted)
        found = {key: self.cache[key] for key in keys if key in self.cache}
        missing = sorted(keys - found.keys())
        if missing:
            raws = await self.c.store.alerts.latest_jsons([alert_id for alert_id, _ in missing])
            for key, raw in zip(missing, raws, strict=True):
                found[key] = fields = self._fields(key[1], raw)
                if "cap" in fields:  # only a complete rendering is kept (a missing or stale one is not)
                    self.cache[key] = fields
            while len(self.cache) > self.keep:
                self.cache.pop(next(iter(self.cache)))
        return found

    def _fields(self, version: int, raw: bytes | str | None) -> dict[str, Any]:
        if not raw:
            return {}
        alert = AlertVersion.model_validate_json(raw)
        if alert.version != version:  # a newer version exists; the worker drops this job anyway
            return {"hazard": alert.hazard, "area": alert.area}
        return {"hazard": alert.hazard, "area": alert.area, "cause": alert.cause,
                "cap": self.c.render_cap(alert).decode()}
