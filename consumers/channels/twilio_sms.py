"""SMS through Twilio's official SDK (its asyncio client).

Each message carries a status-callback URL naming its delivery id (Twilio signs the
whole URL, so the id cannot be forged) and a validity period that ends with the alert:
a warning Twilio could not hand to the carrier in time is dropped by Twilio, never
delivered late. The text is fitted to ``sms_max_segments`` keeping the reply reference.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from consumers.notifier import Result, delivered, permanent, retryable
from warning.delivery.providers import TWILIO_API, TwilioAccount
from warning.keys import RETENTION_S, Keys
from warning.logs import mask_phone
from warning.models import DeliveryJob
from warning.targeting.message import short_ref_of
from warning.targeting.sms import fit

# Twilio error codes (https://www.twilio.com/docs/api/errors) that no retry can fix.
PERMANENT_CODES = frozenset({
    21211,  # invalid 'To' number
    21214,  # 'To' number cannot be reached
    21217,  # phone number does not appear to be valid
    21401,  # invalid phone number
    21407,  # this phone number type does not support SMS
    21408,  # permission to send to this region not enabled
    21421,  # invalid phone number
    21610,  # recipient unsubscribed (replied STOP)
    21612,  # cannot route to this number
    21614,  # 'To' number is not a mobile number
})
RETRYABLE_CODES = frozenset({20429, 30001, 20500, 20503})  # too many requests, queue overflow, 5xx
MAX_VALIDITY_S = 36_000  # Twilio accepts 1..36000 seconds


PHONE = re.compile(r"\+?\d[\d ]{6,16}\d")


def classify(status: int, code: int | None, message: str) -> Result:
    """Retryable or permanent; the reason (logged, stored) with any phone number masked."""
    reason = PHONE.sub(lambda m: mask_phone(m.group()), f"twilio {status} code {code}: {message}")
    if code in PERMANENT_CODES:
        return permanent(reason)
    if code in RETRYABLE_CODES or status in (401, 408, 429) or status >= 500:
        return retryable(reason)  # 401: a credential being fixed should not strand everyone
    return permanent(reason)


class _ApiHostClient(AsyncTwilioHttpClient):
    """Twilio's own HTTP client with the API host swapped (the sandbox speaks the same API)."""

    def __init__(self, api_base: str) -> None:
        super().__init__()
        self.api_base = api_base.rstrip("/")

    async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        return await super().request(method, url.replace(TWILIO_API, self.api_base, 1), *args, **kwargs)


class TwilioSms:
    channel = "sms"

    def __init__(self, account: TwilioAccount, *, callback_base: str, redis: Any, keys: Keys,
                 max_segments: int = 4, timeout_s: float = 10.0, concurrency: int = 50) -> None:
        # Twilio's loggers print request parameters (phone numbers): keep them quiet.
        logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
        self.account = account
        self.http = _ApiHostClient(account.api_base)
        self.client = Client(account.sid, account.token, http_client=self.http)
        self.callback_base = callback_base.rstrip("/")
        self.redis = redis
        self.keys = keys
        self.max_segments = max_segments
        self.timeout_s = timeout_s
        self._slots = asyncio.Semaphore(concurrency)

    async def send_batch(self, jobs: Sequence[DeliveryJob]) -> list[Result]:
        results = list(await asyncio.gather(*(self._send(job) for job in jobs)))
        await self._remember(j for j, r in zip(jobs, results, strict=True) if r.awaits_receipt)
        return results

    async def _send(self, job: DeliveryJob) -> Result:
        validity = int(min(job.expires - time.time(), MAX_VALIDITY_S))
        if validity < 1:
            return permanent("alert expired before Twilio could take it")
        sender: dict[str, str] = ({"messaging_service_sid": self.account.messaging_service_sid}
                                  if self.account.messaging_service_sid else {"from_": self.account.from_number or ""})
        try:
            async with self._slots:
                message = await asyncio.wait_for(self.client.messages.create_async(
                    to=job.address, body=fit(job.text, self.max_segments), validity_period=validity,
                    status_callback=f"{self.callback_base}/v1/providers/twilio/status?d={quote(job.delivery_id)}",
                    **sender), self.timeout_s)
        except TwilioRestException as exc:
            return classify(exc.status, exc.code, exc.msg)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return retryable(f"twilio unreachable: {type(exc).__name__} {exc}")
        return delivered(provider_id=str(message.sid), awaits_receipt=True)

    async def _remember(self, jobs: Any) -> None:
        """What a reply will quote: the reference, and the last alert each number got."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for job in jobs:
                ttl = int(max(job.expires - time.time(), 0) + RETENTION_S)
                pipe.set(self.keys.sms_ref(short_ref_of(job.alert_id, job.version)), job.alert_id, ex=ttl)
                pipe.set(self.keys.sms_to(job.address), orjson.dumps(
                    {"alert_id": job.alert_id, "recipient": job.recipient, "delivery_id": job.delivery_id}), ex=ttl)
            await pipe.execute()

    async def close(self) -> None:
        await self.http.close()
