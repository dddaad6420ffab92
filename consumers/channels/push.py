"""App push: FCM HTTP v1 for the mobile app, Web Push (VAPID) for browsers.

A push address is an FCM registration token, or a Web Push subscription (its JSON, as
the browser's ``PushSubscription.toJSON()`` gives it). Orange and red go at high priority;
the TTL ends with the alert; every version of an alert shares one collapse key / topic,
so an upgrade or a cancel replaces the earlier notification on the device. A token the
provider reports as unregistered is permanent and is removed from the directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
from google.auth.transport.requests import Request as GoogleRequest
from google.oauth2 import service_account
from py_vapid import Vapid
from pywebpush import WebPushException, webpush_async

from consumers.notifier import Result, delivered, permanent, retryable
from warning.models import DeliveryJob, Tier

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
LOUD = (Tier.orange, Tier.red)


def ttl_of(job: DeliveryJob) -> int:
    return max(int(job.expires - time.time()), 0)


def payload(job: DeliveryJob) -> dict[str, str]:
    """What the app or page receives (FCM data values must be strings)."""
    return {"delivery_id": job.delivery_id, "alert_id": job.alert_id, "version": str(job.version),
            "tier": job.tier.value, "msg_type": job.msg_type, "text": job.text, "expires": str(int(job.expires))}


def collapse_key(alert_id: str) -> str:
    """Web Push topics are at most 32 URL-safe characters; FCM takes the same key."""
    return hashlib.blake2b(alert_id.encode(), digest_size=12).hexdigest()


def fcm_message(job: DeliveryJob) -> dict[str, Any]:
    loud = job.tier in LOUD
    ttl = ttl_of(job)
    key = collapse_key(job.alert_id)
    title, _, body = job.text.partition("】") if "】" in job.text else ("", "", job.text)
    return {"message": {
        "token": job.address, "data": payload(job),
        "notification": {"title": (title + "】") if title else job.tier.value.upper(), "body": body},
        "android": {"priority": "HIGH" if loud else "NORMAL", "ttl": f"{ttl}s", "collapse_key": key,
                    "notification": {"tag": key}},
        "apns": {"headers": {"apns-priority": "10" if loud else "5", "apns-collapse-id": key,
                             "apns-expiration": str(int(job.expires))}},
    }}


def classify_fcm(status: int, body: bytes) -> Result:
    try:
        error = orjson.loads(body).get("error", {})
    except orjson.JSONDecodeError:
        error = {}
    codes = {d.get("errorCode") for d in error.get("details", []) if isinstance(d, dict)}
    reason = f"fcm {status} {error.get('status', '')} {','.join(sorted(c for c in codes if c))}: " \
             f"{error.get('message', '')}".strip()
    if "UNREGISTERED" in codes or status == 404:
        return permanent(reason, unregistered=True)
    if status in (401, 408, 429) or status >= 500 or codes & {"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"}:
        return retryable(reason)
    return permanent(reason)


class FcmClient:
    """FCM HTTP v1 with a service account (google-auth signs the OAuth2 grant)."""

    def __init__(self, service_account_file: Path, base_url: str, http: httpx.AsyncClient) -> None:
        info = orjson.loads(service_account_file.read_bytes())
        self.project = info["project_id"]
        self.credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=[FCM_SCOPE])
        self.url = f"{base_url.rstrip('/')}/v1/projects/{self.project}/messages:send"
        self.http = http
        self._lock = asyncio.Lock()

    async def _token(self) -> str:
        async with self._lock:
            if not self.credentials.valid:  # google-auth's transport is blocking: off the loop
                await asyncio.to_thread(self.credentials.refresh, GoogleRequest())
        return str(self.credentials.token)

    async def send(self, job: DeliveryJob) -> Result:
        try:
            token = await self._token()
            response = await self.http.post(self.url, content=orjson.dumps(fcm_message(job)),
                                            headers={"Authorization": f"Bearer {token}",
                                                     "Content-Type": "application/json"})
        except (httpx.HTTPError, OSError) as exc:
            return retryable(f"fcm unreachable: {type(exc).__name__} {exc}")
        except Exception as exc:  # google-auth's RefreshError and friends
            return retryable(f"fcm auth failed: {type(exc).__name__} {exc}")
        if response.status_code == 200:
            return delivered(provider_id=str(response.json().get("name", "")))
        if response.status_code == 401:
            self.credentials.token = None  # refresh on the retry
        return classify_fcm(response.status_code, response.content)


class WebPushClient:
    """Web Push with VAPID through pywebpush (encrypts aes128gcm, signs the JWT)."""

    def __init__(self, private_key: str, subject: str, timeout_s: float) -> None:
        self.vapid = Vapid.from_file(private_key) if Path(private_key).is_file() else Vapid.from_string(private_key)
        self.subject = subject
        self.timeout_s = timeout_s
        self.session: aiohttp.ClientSession | None = None

    async def send(self, job: DeliveryJob) -> Result:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        try:
            subscription = orjson.loads(job.address)
            response = await webpush_async(
                subscription, data=orjson.dumps(payload(job)).decode(), vapid_private_key=self.vapid,
                vapid_claims={"sub": self.subject}, ttl=ttl_of(job), timeout=self.timeout_s,
                headers={"Urgency": "high" if job.tier in LOUD else "normal", "Topic": collapse_key(job.alert_id)},
                aiohttp_session=self.session)
        except orjson.JSONDecodeError:
            return permanent("push address is neither an FCM token nor a Web Push subscription")
        except WebPushException as exc:
            status = getattr(exc.response, "status", 0) or 0
            reason = f"web push {status}: {exc.message}"[:300]
            if status in (404, 410):
                return permanent(reason, unregistered=True)
            return retryable(reason) if status in (408, 429) or status >= 500 else permanent(reason)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return retryable(f"web push unreachable: {type(exc).__name__} {exc}")
        return delivered(provider_id=str(response.headers.get("Location", "")))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


class Push:
    channel = "push"

    def __init__(self, fcm: FcmClient | None, webpush: WebPushClient | None, concurrency: int = 100) -> None:
        self.fcm = fcm
        self.webpush = webpush
        self._slots = asyncio.Semaphore(concurrency)

    async def send_batch(self, jobs: Sequence[DeliveryJob]) -> list[Result]:
        return list(await asyncio.gather(*(self._send(job) for job in jobs)))

    async def _send(self, job: DeliveryJob) -> Result:
        async with self._slots:
            if job.address.lstrip().startswith("{"):
                if self.webpush is None:
                    return permanent("no VAPID key configured for Web Push")
                return await self.webpush.send(job)
            if self.fcm is None:
                return permanent("no FCM service account configured")
            return await self.fcm.send(job)

    async def close(self) -> None:
        if self.webpush is not None:
            await self.webpush.close()
        if self.fcm is not None:
            await self.fcm.http.aclose()
