"""Alerts out, responses in: list, detail, CAP, acknowledge, feedback, after-action report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
import structlog
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Response as FastAPIResponse
from fastapi.responses import Response
from pydantic import AwareDatetime

from warning.api.auth import caller, require
from warning.api.deps import Runtime, runtime
from warning.areas import inside
from warning.models import Ack, AlertVersion, Feedback, FeedbackReport
from warning.readmodel import active_alerts
from warning.response.ack import acknowledge, audit
from warning.response.history import archived, closed_alerts
from warning.response.report import after_action_report, alert_detail
from warning.response.tokens import Principal

log = structlog.get_logger()
router = APIRouter(prefix="/v1/alerts", tags=["alerts"])
Status = Literal["unacknowledged", "acknowledged", "escalating"]


async def alert_summaries(rt: Runtime, tier: str | None = None, area: str | None = None,
                          status: Status | None = None) -> list[dict[str, Any]]:
    """Active alerts with what the console shows: reach, acks, escalation, unconfirmed grids."""
    out = []
    for alert in await active_alerts(rt.container.store):
        if (tier and alert["tier"] != tier) or (area and not inside(alert["area"], area)):
            continue
        detail = await alert_detail(rt.container, alert["alert_id"])
        if detail is None:
            continue
        acked = bool(detail["acks"])
        escalation = detail["escalation"]
        state = "acknowledged" if acked else "escalating" if escalation.get("step", 0) > 0 else "unacknowledged"
        if status and state != status:
            continue
        grids = detail["grids"]
        names = {lang: rt.container.directory.area_name(alert["area"], lang) for lang in ("zh-CN", "en")}
        out.append({**alert, "msg_type": detail["msg_type"], "expires": detail["expires"], "status": state,
                    "reach_pct": detail["reach_pct"], "acks": [a["by"] for a in detail["acks"]],
                    "escalation": escalation, "area_name": names,
                    "grids": sorted(g["grid"] for g in [*grids["confirmed"], *grids["unconfirmed"]]),
                    "unconfirmed_grids": [g["grid"] for g in grids["unconfirmed"]],
                    "feedback": detail["feedback"][-5:]})
    return out


@router.get("", summary="Active alerts; closed ones (expired, cancelled) with state=closed, newest first, paged")
async def list_alerts(rt: Annotated[Runtime, Depends(runtime)], _: Annotated[Principal, Depends(caller)],
                      response: FastAPIResponse,
                      tier: Annotated[Literal["blue", "yellow", "orange", "red"] | None, Query()] = None,
                      area: Annotated[str | None, Query(pattern=r"^\d{2,12}$")] = None,
                      status: Annotated[Status | None, Query()] = None,
                      state: Annotated[Literal["active", "closed"], Query()] = "active",
                      since: Annotated[AwareDatetime | None, Query()] = None,
                      until: Annotated[AwareDatetime | None, Query()] = None,
                      hazard: Annotated[str | None, Query(max_length=64)] = None,
                      limit: Annotated[int, Query(ge=1, le=500)] = 50,
                      offset: Annotated[int, Query(ge=0)] = 0) -> list[dict[str, Any]]:
    if state == "active":
        return [a for a in await alert_summaries(rt, tier, area, status) if not hazard or a["hazard"] == hazard]
    page, total = await closed_alerts(rt.container, since.timestamp() if since else None,
                                      until.timestamp() if until else None, hazard, area, limit, offset)
    response.headers["X-Total-Count"] = str(total)
    return page


async def _detail(rt: Runtime, alert_id: str) -> dict[str, Any]:
    detail = await alert_detail(rt.container, alert_id)
    if detail is None and (kept := await archived(rt.container, alert_id)) is not None:
        return {**kept["detail"], "closed_at": kept["closed_at"]}  # from the history, once its live keys expired
    if detail is None:
        raise HTTPException(404, f"no alert {alert_id!r}")
    return detail


@router.get("/{alert_id}", summary="One alert: versions, reach, receipts, acks, escalation, grids")
async def get_alert(alert_id: str, rt: Annotated[Runtime, Depends(runtime)],
                    _: Annotated[Principal, Depends(caller)]) -> dict[str, Any]:
    return await _detail(rt, alert_id)


@router.get("/{alert_id}/cap", summary="The latest version as CAP 1.2", response_class=Response,
            responses={200: {"content": {"application/cap+xml": {}}}})
async def get_cap(alert_id: str, rt: Annotated[Runtime, Depends(runtime)],
                  _: Annotated[Principal, Depends(caller)]) -> Response:
    raw: str | bytes | None = await rt.container.store.alerts.latest_json(alert_id)
    if not raw:
        kept = await archived(rt.container, alert_id)
        if kept is None or not kept["detail"]["versions"]:
            raise HTTPException(404, f"no alert {alert_id!r}")
        raw = orjson.dumps(kept["detail"]["versions"][-1])
    return Response(rt.container.render_cap(AlertVersion.model_validate_json(raw)), media_type="application/cap+xml")


@router.get("/{alert_id}/report", summary="After-action report (JSON)")
async def get_report(alert_id: str, rt: Annotated[Runtime, Depends(runtime)],
                     _: Annotated[Principal, Depends(caller)]) -> dict[str, Any]:
    report = await after_action_report(rt.container, alert_id)
    if report is None and (kept := await archived(rt.container, alert_id)) is not None:
        report = kept["report"]
    if report is None:
        raise HTTPException(404, f"no alert {alert_id!r}")
    return report


async def _may_respond(rt: Runtime, who: Principal, alert_id: str) -> dict[str, Any]:
    c = rt.container
    found = await c.store.alerts.summary(alert_id)
    if found is None:
        raise HTTPException(404, f"no alert {alert_id!r}")
    area = found.area
    grids = {str(g) for g in await c.redis.smembers(c.keys.alert_grids(alert_id))}
    if not who.may_respond(str(area), grids):
        log.warning("response_refused", alert_id=alert_id, caller=who.id, role=who.role, area=area)
        raise HTTPException(403, f"alert {alert_id} (area {area}) is outside your jurisdiction ({who.area or '-'})")
    return {"area": area}


@router.post("/{alert_id}/ack", summary="Acknowledge (idempotent: recorded once per person and version)")
async def post_ack(alert_id: str, rt: Annotated[Runtime, Depends(runtime)],
                   who: Annotated[Principal, Depends(require("officer", "grid_worker"))]) -> dict[str, Any]:
    await _may_respond(rt, who, alert_id)
    ack = Ack(alert_id=alert_id, by=who.id, at=datetime.now(UTC), via="api", role=who.role, level=who.level)
    outcome = await acknowledge(rt.container.redis, rt.container.keys, ack, grids=who.grids)
    if outcome.first:
        await rt.publish_ack(outcome.ack)
    log.info("alert_acknowledged", alert_id=alert_id, caller=who.id, first=outcome.first,
             stopped_escalation=outcome.stopped_escalation)
    return {"alert_id": alert_id, "recorded": outcome.first, "ack": orjson.loads(outcome.ack.model_dump_json()),
            "escalation": await rt.container.escalation.state(alert_id)}


@router.post("/{alert_id}/feedback", status_code=201, summary="A report from the ground")
async def post_feedback(alert_id: str, body: FeedbackReport, rt: Annotated[Runtime, Depends(runtime)],
                        who: Annotated[Principal, Depends(require("grid_worker", "officer"))]) -> dict[str, Any]:
    await _may_respond(rt, who, alert_id)
    c = rt.container
    feedback = Feedback(alert_id=alert_id, by=who.id, at=datetime.now(UTC), **body.model_dump())
    value = feedback.model_dump_json()
    await c.redis.rpush(c.keys.feedback(alert_id), value)
    await c.redis.expire(c.keys.feedback(alert_id), 30 * 86400)
    await audit(c.redis, c.keys, alert_id, orjson.loads(value))
    await rt.publish(c.topics.acks, alert_id, value.encode())
    log.info("feedback_received", alert_id=alert_id, caller=who.id, status=feedback.status)
    return orjson.loads(value)  # type: ignore[no-any-return]
