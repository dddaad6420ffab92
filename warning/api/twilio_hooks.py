"""Twilio's webhooks: message status callbacks and inbound SMS (replies that acknowledge).

Both are checked with Twilio's own RequestValidator over the URL Twilio called — our
public URL, since a proxy may rewrite what the app sees — and the form parameters; a
forged or altered request gets 403 and a log line. Twilio's signature has no timestamp,
so replays are made harmless instead: a status can only move a receipt forward once, and
an inbound message id is processed once.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from twilio.request_validator import RequestValidator

from warning.api.deps import Runtime, runtime
from warning.delivery.fallback import FinalReceipt, settle_receipts
from warning.logs import mask_phone
from warning.models import Ack
from warning.response.ack import UnknownAlert, acknowledge
from warning.targeting.sms import parse_reply

log = structlog.get_logger()
router = APIRouter(prefix="/v1/providers/twilio", tags=["providers"])

# Twilio MessageStatus -> our receipt status (intermediate ones only annotate the receipt).
FINAL = {"delivered": "delivered", "undelivered": "undelivered", "failed": "failed"}
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


async def signed_form(request: Request, rt: Runtime) -> dict[str, str]:
    form = {k: str(v) for k, v in (await request.form()).items()}
    url = rt.settings.api_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    signature = request.headers.get("x-twilio-signature", "")
    if not RequestValidator(rt.twilio.token).validate(url, form, signature):
        log.warning("twilio_signature_rejected", path=request.url.path,
                    client=request.client.host if request.client else None)
        raise HTTPException(403, "X-Twilio-Signature does not match this request")
    return form


@router.post("/status", response_class=Response)
async def status_callback(request: Request, rt: Annotated[Runtime, Depends(runtime)],
                          d: Annotated[str, Query(description="delivery id")]) -> Response:
    form = await signed_form(request, rt)
    status = form.get("MessageStatus", "")
    detail: dict[str, Any] = {"provider_status": status, "sid": form.get("MessageSid", "")}
    if form.get("ErrorCode"):
        detail["error_code"] = form["ErrorCode"]
    await rt.container.redis.hset(rt.container.keys.delivery(d), mapping={
        f"provider_{status}_at": time.time(), "provider_sid": detail["sid"]})
    log.info("twilio_status", delivery_id=d, status=status, error_code=detail.get("error_code"))
    if status not in FINAL:
        return Response(status_code=200)
    reason = f"twilio {status} {detail.get('error_code', '')}".strip()
    await settle_receipts(rt.receipts, "sms", [FinalReceipt(d, FINAL[status], reason, detail)])
    return Response(status_code=200)


def _twiml(text: str) -> Response:
    return Response(f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{text}</Message></Response>',
                    media_type="application/xml")


async def _approve_by_sms(rt: Runtime, alert_id: str, person: str, sender: str, sid: str) -> Response:
    """An officer's "批准 REF": the same approve command as the console's, via sms."""
    from warning.api.control import outcome
    from warning.control.commands import Actor, Command

    c = rt.container
    officer = next((o for o in await c.recipients.officers() if o.get("id") == person), None)
    found = await c.store.alerts.summary(alert_id)
    if officer is None or found is None:
        return Response(TWIML_EMPTY, media_type="application/xml")
    actor = Actor(id=person, role="officer", level=officer.get("level", ""), area=officer.get("jurisdiction", ""),
                  via="sms")
    answer = await outcome(rt, Command(command_id=f"sms-{sid}" if sid else f"sms-{alert_id}-{person}", op="approve",
                                       alert_key=found.key, alert_id=alert_id, actor=actor, at=time.time()))
    english = sender.startswith("+1")
    if answer.status == 200:
        return _twiml("Approved: released to residents." if english else "已批准，已向居民发布。")
    reason = str(answer.body.get("detail", ""))
    return _twiml(f"Not approved: {reason}" if english else f"未批准：{reason}")


@router.post("/inbound", response_class=Response)
async def inbound_sms(request: Request, rt: Annotated[Runtime, Depends(runtime)]) -> Response:
    form = await signed_form(request, rt)
    redis, keys = rt.container.redis, rt.container.keys
    sender, sid = form.get("From", ""), form.get("MessageSid", "")
    if sid and not await redis.set(keys.provider_seen(sid), 1, nx=True, ex=7 * 86400):
        return Response(TWIML_EMPTY, media_type="application/xml")  # a replayed webhook
    reply = parse_reply(form.get("Body", ""))
    last_raw = await redis.get(keys.sms_to(sender))
    last: dict[str, Any] = orjson.loads(last_raw) if last_raw else {}
    quoted = await redis.get(keys.sms_ref(reply.ref)) if reply.ref else None
    alert_id = str(quoted or last.get("alert_id") or "")
    person = str(last.get("recipient", "")).partition("#")[0]  # "off-ns#esc1": an escalation message
    where = await redis.hget(keys.people, person) if person else None
    role = str(where or "").partition(" ")[0]
    log.info("sms_reply", alert_id=alert_id, sender=mask_phone(sender), ack=reply.ack, approve=reply.approve,
             role=role or None)
    if reply.approve and quoted and role == "officer":
        return await _approve_by_sms(rt, str(quoted), person, sender, sid)
    if not (reply.ack and alert_id and role in ("officer", "grid_worker")):
        return Response(TWIML_EMPTY, media_type="application/xml")
    grids = str(where or "").partition(" ")[2].split(",") if role == "grid_worker" else []
    ack = Ack(alert_id=alert_id, by=person, at=rt.now(), via="sms", role=role)
    try:
        outcome = await acknowledge(redis, keys, ack, grids=[g for g in grids if g])
    except UnknownAlert:
        return Response(TWIML_EMPTY, media_type="application/xml")
    if outcome.first:
        await rt.publish_ack(outcome.ack)
    return _twiml("已确认，谢谢。" if not sender.startswith("+1") else "Acknowledged, thank you.")
