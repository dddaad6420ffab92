"""Officers in control: issue, change, cancel, approve and reject warnings by hand.

A request is checked here (body, role, jurisdiction), then travels as a command on
``warning.control`` to the lifecycle agent that owns the alert, which applies it and
answers (warning/control/commands.py); the request waits for that answer. The same
``Idempotency-Key`` from the same caller gets the first answer, never a second alert.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, Header, HTTPException
from fastapi.responses import JSONResponse

from warning.api.auth import require
from warning.api.deps import Runtime, runtime
from warning.areas import inside
from warning.control import replies
from warning.control.commands import Actor, Command, Outcome, command_id, manual_alert_id
from warning.control.requests import CancelRequest, IssueRequest, RejectRequest, UpdateRequest, check_issue
from warning.partitions import partition_of
from warning.response.ack import audit
from warning.response.tokens import Principal

log = structlog.get_logger()
router = APIRouter(tags=["officers"])
Officer = Annotated[Principal, Depends(require("officer"))]
Drafter = Annotated[Principal, Depends(require("officer", "issuer"))]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
Via = Annotated[Literal["api", "console", "cli"], Header(alias="X-Warning-Via")]


def _actor(who: Principal, via: str) -> Actor:
    return Actor(id=who.id, role=who.role, level=who.level, area=who.area, via=via)


async def submit(rt: Runtime, cmd: Command) -> JSONResponse:
    """Publish the command (unless it was answered before) and wait for the agent's answer."""
    first = await outcome(rt, cmd)
    return JSONResponse(first.body, status_code=first.status)


async def outcome(rt: Runtime, cmd: Command) -> Outcome:
    c = rt.container
    first = await replies.outcome_of(c.redis, c.keys, cmd.command_id)
    if first is None:
        await rt.publish(c.topics.control, cmd.alert_key, cmd.model_dump_json().encode(),
                         partition=partition_of(cmd.alert_key, c.settings.partitions))
        first = await replies.wait_for_outcome(c.redis, c.keys, cmd.command_id, c.settings.control_timeout_s)
    if first is None:
        raise HTTPException(503, f"no lifecycle worker applied the command within {c.settings.control_timeout_s:g} s "
                                 f"(WARNING_CONTROL_TIMEOUT_S); it is queued on {c.topics.control} as "
                                 f"{cmd.command_id} and will be applied when a worker takes it. Retry with the same "
                                 "Idempotency-Key to get its outcome.")
    return first


async def refused(rt: Runtime, alert_id: str, who: Principal, op: str, status: int, detail: str) -> HTTPException:
    """A refusal the API decides is in the alert's audit trail too."""
    log.warning("control_refused", alert_id=alert_id, op=op, caller=who.id, status=status, reason=detail)
    if alert_id:
        await audit(rt.container.redis, rt.container.keys, alert_id,
                    {"event": f"{op}_refused", "by": who.id, "role": who.role, "at": datetime.now(UTC).isoformat(),
                     "reason": detail})
    return HTTPException(status, detail)


def _cid(who: Principal, op: str, target: str, key: str | None) -> str:
    return command_id(who.id, op, target, key) if key else uuid.uuid4().hex[:24]


@router.post("/v1/alerts", status_code=201, summary="Issue a warning by hand (drafts wait for the release policy)")
async def issue_alert(body: IssueRequest, rt: Annotated[Runtime, Depends(runtime)], who: Drafter,
                      idempotency_key: IdempotencyKey = None, via: Via = "api") -> JSONResponse:
    c = rt.container
    check_issue(body, c.pack, c.directory, c.grids, c.templates)
    outside = [a for a in body.areas if who.role != "admin" and not inside(a, who.area or "~")]
    if outside:
        raise await refused(rt, "", who, "issue", 403, f"areas {', '.join(outside)} are outside your jurisdiction "
                                                        f"({who.area or '-'})")
    cid = _cid(who, "issue", "", idempotency_key)
    now = time.time()
    alert_id = await replies.claim_alert_id(c.redis, c.keys, cid,
                                            manual_alert_id(body.hazard, body.areas[0], now, cid, body.drill))
    key = f"{'drill' if body.drill else 'manual'}:{alert_id}"
    cmd = Command(command_id=cid, op="issue", alert_key=key, alert_id=alert_id, actor=_actor(who, via), at=now,
                  body=body.command_body(c.directory, now))
    return await submit(rt, cmd)


async def _target(rt: Runtime, alert_id: str, who: Principal, op: str) -> tuple[str, str]:
    """The alert's key and area, if the caller may act on it."""
    c = rt.container
    found = await c.store.alerts.summary(alert_id)
    if found is None:
        raise HTTPException(404, f"no alert {alert_id!r}")
    key, area = found.key, found.area
    if who.role != "admin" and not inside(area, who.area or "~"):
        raise await refused(rt, alert_id, who, op, 403, f"alert {alert_id} (area {area}) is outside your "
                                                         f"jurisdiction ({who.area or '-'})")
    return key, area


async def _command(rt: Runtime, alert_id: str, who: Principal, op: Any, body: dict[str, Any],
                   idempotency_key: str | None, via: str) -> JSONResponse:
    key, _ = await _target(rt, alert_id, who, op)
    cmd = Command(command_id=_cid(who, op, alert_id, idempotency_key), op=op, alert_key=key, alert_id=alert_id,
                  actor=_actor(who, via), at=time.time(), body=body)
    return await submit(rt, cmd)


async def _check_change(rt: Runtime, alert_id: str, body: UpdateRequest) -> None:
    c = rt.container
    found = await c.store.alerts.summary(alert_id)
    check_issue(body, c.pack, c.directory, c.grids, c.templates, found.hazard if found else None)


@router.patch("/v1/alerts/{alert_id}", summary="Change tier, texts, areas or expiry (any alert)")
async def update_alert(alert_id: str, body: UpdateRequest, rt: Annotated[Runtime, Depends(runtime)], who: Drafter,
                       idempotency_key: IdempotencyKey = None, via: Via = "api") -> JSONResponse:
    await _check_change(rt, alert_id, body)
    return await _command(rt, alert_id, who, "update", body.command_body(rt.container.directory, time.time()),
                          idempotency_key, via)


@router.post("/v1/alerts/{alert_id}/cancel", summary="Cancel any alert: the all-clear to everyone it reached")
async def cancel_alert(alert_id: str, body: CancelRequest, rt: Annotated[Runtime, Depends(runtime)], who: Officer,
                       idempotency_key: IdempotencyKey = None, via: Via = "api") -> JSONResponse:
    data = body.model_dump(mode="json")
    if body.allow_reissue == "after_silence":  # the guard lasts as long as the silences over the alert
        _, area = await _target(rt, alert_id, who, "cancel")
        ends = [s.ends_at.timestamp() for s in await rt.container.silences.all()
                if s.status(time.time()) == "active" and (s.matchers.area is None or inside(area, s.matchers.area))]
        data["silence_until"] = max(ends, default=0.0)
    return await _command(rt, alert_id, who, "cancel", data, idempotency_key, via)


@router.post("/v1/alerts/{alert_id}/approve", summary="Release the pending version (not your own draft)")
async def approve_alert(alert_id: str, rt: Annotated[Runtime, Depends(runtime)], who: Officer,
                        body: UpdateRequest | None = None, idempotency_key: IdempotencyKey = None,
                        via: Via = "api") -> JSONResponse:
    edits = body.command_body(rt.container.directory, time.time()) if body is not None else {}
    if body is not None:
        await _check_change(rt, alert_id, body)
    return await _command(rt, alert_id, who, "approve", {"edits": edits} if edits else {}, idempotency_key, via)


@router.post("/v1/alerts/{alert_id}/reject", summary="Refuse the pending version, with a reason")
async def reject_alert(alert_id: str, body: RejectRequest, rt: Annotated[Runtime, Depends(runtime)], who: Officer,
                       idempotency_key: IdempotencyKey = None, via: Via = "api") -> JSONResponse:
    return await _command(rt, alert_id, who, "reject", body.model_dump(), idempotency_key, via)


@router.get("/v1/approvals", summary="Versions waiting for a second person, in the caller's jurisdiction")
async def list_approvals(rt: Annotated[Runtime, Depends(runtime)], who: Drafter) -> list[dict[str, Any]]:
    now = time.time()
    found = await replies.pending_approvals(rt.container.redis, rt.container.keys)
    mine = [a for a in found if who.role == "admin" or any(inside(x, who.area or "~") for x in a["areas"])]
    return [{**a, "hold_left_s": max(0.0, round(a["hold_until"] - now, 1)),
             "may_approve": who.role in ("officer", "admin") and a["author"] != who.id} for a in mine]

