"""Community-grid endpoints: an HMAC-signed JSON webhook per grid station.

The body is the alert as the station needs it (tier, area, text, expiry) with its CAP 1.2
rendering; the headers carry the delivery id, a timestamp and the signature
(warning.signing). 2xx is delivered; 408, 425, 429, 5xx and network errors are retried;
any other 4xx is permanent (the station refuses this request and will keep refusing it).

aiohttp, not httpx: per request httpx spent ~40 % of a grid consumer's time in its own
machinery (anyio, and an import attempt per request to detect the async library), which
capped a consumer at a few hundred webhooks a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import aiohttp
import orjson
from yarl import URL

from consumers.notifier import Result, delivered, permanent, retryable
from warning.models import DeliveryJob
from warning.signing import sign_headers

KEPT_URLS = 20_000  # a city's grid stations; past that the kept ones are dropped and parsed again
# (alert id, version) pairs -> each one's alert fields + CAP, in one call for a batch
AlertLookup = Callable[[Iterable[tuple[str, int]]], Awaitable[dict[tuple[str, int], dict[str, Any]]]]


def body_of(job: DeliveryJob, alert: dict[str, Any]) -> bytes:
    return orjson.dumps({"delivery_id": job.delivery_id, "alert_id": job.alert_id, "version": job.version,
                         "tier": job.tier.value, "msg_type": job.msg_type, "grid": job.recipient.removeprefix("grid:"),
                         "language": job.language, "text": job.text, "issued_at": job.issued_at,
                         "expires": job.expires, **alert})


class GridWebhook:
    channel = "grid"

    def __init__(self, secret: bytes, lookup: AlertLookup, url_of: Callable[[str], str],
                 timeout_s: float, concurrency: int = 50) -> None:
        self.secret = secret
        self.lookup = lookup
        self.url_of = url_of
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.concurrency = concurrency
        self._http: aiohttp.ClientSession | None = None
        self._urls: dict[str, URL] = {}

    @property
    def http(self) -> aiohttp.ClientSession:
        """Made on first use: a session belongs to the event loop that runs the consumer."""
        if self._http is None:
            # No cookies: a station's reply must not change what the next delivery carries.
            self._http = aiohttp.ClientSession(timeout=self.timeout, cookie_jar=aiohttp.DummyCookieJar(),
                                               connector=aiohttp.TCPConnector(limit=self.concurrency))
        return self._http

    def _url(self, address: str) -> URL:
        """Each station's URL parsed once: yarl's parse of every request's URL was ~2 % of a consumer."""
        url = self._urls.get(address)
        if url is None:
            if len(self._urls) >= KEPT_URLS:
                self._urls.clear()
            url = self._urls[address] = URL(self.url_of(address))
        return url

    async def send_batch(self, jobs: Sequence[DeliveryJob]) -> list[Result]:
        alerts = await self.lookup({(j.alert_id, j.version) for j in jobs})
        return list(await asyncio.gather(*(self._send(job, alerts[job.alert_id, job.version]) for job in jobs)))

    async def _send(self, job: DeliveryJob, alert: dict[str, Any]) -> Result:
        body = body_of(job, alert)
        headers = {"Content-Type": "application/json", **sign_headers(self.secret, body, job.delivery_id)}
        try:
            async with self.http.post(self._url(job.address), data=body, headers=headers) as response:
                status = response.status
                text = "" if 200 <= status < 300 else (await response.text(errors="replace"))[:200]
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return retryable(f"grid endpoint unreachable: {type(exc).__name__} {exc}")
        if 200 <= status < 300:
            return delivered(provider_id=job.delivery_id)
        reason = f"grid endpoint {status}: {text}"
        return retryable(reason) if status in (408, 425, 429) or status >= 500 else permanent(reason)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
