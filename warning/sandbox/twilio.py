"""Twilio's Messages API as the SDK sees it: form-encoded create, Twilio's error JSON,
and signed status callbacks (queued → sent → delivered / undelivered).

Test numbers, as on Twilio's test credentials, plus a few of ours:

============== ==================================================
+15005550001   400, 21211 invalid 'To' number
+15005550002   400, 21612 cannot route
+15005550003   400, 21408 region not enabled
+15005550004   400, 21610 unsubscribed (STOP)
+15005550009   400, 21614 not a mobile number
…0429          429, 20429 too many requests
…0500          500, 20500 internal error
…0503          503 the first time for a number, then accepted
…0408          no answer (the client times out)
…0030          accepted, then undelivered (30003 unreachable)
…0000          accepted, then no receipt at all
============== ==================================================
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import secrets
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from twilio.request_validator import RequestValidator

from warning.delivery.providers import SANDBOX_TWILIO_SID, SANDBOX_TWILIO_TOKEN
from warning.sandbox.recorder import Recorder
from warning.targeting.sms import segments

MAGIC = {
    "+15005550001": (400, 21211, "The 'To' number is not a valid phone number."),
    "+15005550002": (400, 21612, "The 'To' phone number is not currently reachable via SMS."),
    "+15005550003": (400, 21408, "Permission to send an SMS has not been enabled for the region."),
    "+15005550004": (400, 21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (400, 21614, "'To' number is not a valid mobile number"),
}
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def twilio_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                         "status": status}, status_code=status)


def router(recorder: Recorder, callback_delay_s: float = 0.02) -> APIRouter:
    api = APIRouter()
    validator = RequestValidator(SANDBOX_TWILIO_TOKEN)
    failed_once: set[str] = set()
    tasks: set[asyncio.Task[None]] = set()
    http = httpx.AsyncClient(timeout=10)

    async def callback(url: str, params: dict[str, str]) -> None:
        await asyncio.sleep(callback_delay_s)
        with contextlib.suppress(httpx.HTTPError):  # Twilio does not retry status callbacks either
            await http.post(url, data=params, headers={"X-Twilio-Signature": validator.compute_signature(url, params)})

    async def receipts(url: str, base: dict[str, str], outcome: list[tuple[str, str]]) -> None:
        for status, error in outcome:
            params = {**base, "MessageStatus": status, "SmsStatus": status}
            if error:
                params["ErrorCode"] = error
            await callback(url, params)

    @api.post("/2010-04-01/Accounts/{account}/Messages.json")
    async def create(account: str, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        expected = "Basic " + base64.b64encode(f"{SANDBOX_TWILIO_SID}:{SANDBOX_TWILIO_TOKEN}".encode()).decode()
        if auth != expected or account != SANDBOX_TWILIO_SID:
            return twilio_error(401, 20003, "Authenticate")
        form = {k: str(v) for k, v in (await request.form()).items()}
        to, body = form.get("To", ""), form.get("Body", "")
        if not body:
            return twilio_error(400, 21602, "Message body is required.")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return twilio_error(400, 21603, "The 'From' phone number is required.")
        if to in MAGIC:
            return twilio_error(*MAGIC[to])
        if not E164.match(to):
            return twilio_error(400, 21211, f"The 'To' number {to[:4]}… is not a valid phone number.")
        if to.endswith("0429"):
            return twilio_error(429, 20429, "Too Many Requests")
        if to.endswith("0500"):
            return twilio_error(500, 20500, "Internal Server Error")
        if to.endswith("0503") and to not in failed_once:
            failed_once.add(to)
            return twilio_error(503, 20503, "Service Unavailable")
        if to.endswith("0408"):
            await asyncio.sleep(3600)
        sid = "SM" + secrets.token_hex(16)
        seg = segments(body)
        status_url = form.get("StatusCallback", "")
        delivery_id = parse_qs(urlsplit(status_url).query).get("d", [""])[0]
        recorder.record("sms", {"delivery_id": delivery_id, "sid": sid, "to": to, "body": body,
                                "segments": seg.count, "encoding": seg.encoding,
                                "validity_period": int(form.get("ValidityPeriod", "0") or 0)})
        if status_url and not to.endswith("0000"):
            base = {"MessageSid": sid, "SmsSid": sid, "AccountSid": account, "To": to, "ApiVersion": "2010-04-01",
                    "From": form.get("From", "")}
            outcome = [("sent", ""), ("undelivered", "30003")] if to.endswith("0030") else \
                [("sent", ""), ("delivered", "")]
            task = asyncio.create_task(receipts(status_url, base, outcome))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        now = formatdate(usegmt=True)
        resource: dict[str, Any] = {
            "sid": sid, "account_sid": account, "to": to, "from": form.get("From"), "body": body,
            "messaging_service_sid": form.get("MessagingServiceSid"), "status": "queued",
            "num_segments": str(seg.count), "num_media": "0", "direction": "outbound-api",
            "api_version": "2010-04-01", "date_created": now, "date_updated": now, "date_sent": None,
            "price": None, "price_unit": "USD", "error_code": None, "error_message": None,
            "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json", "subresource_uris": {}}
        return JSONResponse(resource, status_code=201)

    @api.post("/sandbox/sms/inbound")
    async def inbound(request: Request) -> Response:
        """Simulate a reply: the sandbox posts Twilio's signed inbound webhook to ``url``."""
        data = await request.json()
        params = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": SANDBOX_TWILIO_SID,
                  "From": data["from"], "To": data.get("to", "+15005550006"), "Body": data["body"],
                  "NumMedia": "0", "ApiVersion": "2010-04-01"}
        url = data["url"]
        reply = await http.post(url, data=params, headers={"X-Twilio-Signature":
                                                           validator.compute_signature(url, params)})
        return JSONResponse({"status": reply.status_code, "body": reply.text, "message_sid": params["MessageSid"]})

    return api
