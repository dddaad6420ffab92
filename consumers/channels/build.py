"""The notifier for a channel, from settings: live provider, sandbox, or local sink."""

from __future__ import annotations

from typing import Any

import httpx

from consumers.notifier import Notifier
from consumers.sinks import FileSink
from warning.bootstrap import Container
from warning.delivery import providers
from warning.models import AlertVersion
from warning.sandbox import credentials


def build_notifier(channel: str, c: Container) -> Notifier:
    s = c.settings
    mode = s.provider_mode(channel)
    if mode == "sink":
        return FileSink(channel, s.sink_dir)
    if mode == "sandbox":
        credentials.ensure(providers.sandbox_state(s), s.sandbox_url)
    timeout = httpx.Timeout(s.provider_timeout_s)
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
    raise ValueError(f"unknown channel {channel!r}")


class AlertLookup:
    """Alert fields and CAP 1.2 for a grid webhook body, rendered once per version."""

    def __init__(self, c: Container) -> None:
        self.c = c
        self.cache: dict[tuple[str, int], dict[str, Any]] = {}

    async def __call__(self, alert_id: str, version: int) -> dict[str, Any]:
        if (alert_id, version) not in self.cache:
            raw = await self.c.redis.hget(self.c.keys.alert(alert_id), "version_json")
            if not raw:
                return {}
            alert = AlertVersion.model_validate_json(raw)
            if alert.version != version:  # a newer version exists; the worker drops this job anyway
                return {"hazard": alert.hazard, "area": alert.area}
            self.cache[alert_id, version] = {
                "hazard": alert.hazard, "area": alert.area, "cause": alert.cause,
                "cap": self.c.render_cap(alert).decode()}
            if len(self.cache) > 1000:
                self.cache.pop(next(iter(self.cache)))
        return self.cache[alert_id, version]
