"""Silences: ``POST/GET/DELETE /v1/silences``. A silence is limited to the caller's
jurisdiction; one that would cover an active red alert waits for a second officer
(``POST /v1/silences/{id}/approve``). Once active, the lifecycle re-applies the sources of
the alerts it may cover (a ``resweep`` command each), so they fall as if gone quiet."""

from __future__ import annotations

import time
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, HTTPException

from warning.api.auth import require
from warning.api.deps import Runtime, runtime
from warning.areas import inside
from warning.control.commands import Actor, Command
from warning.control.silences import Silence, SilenceRequest, new_silence
from warning.partitions import partition_of
from warning.readmodel import active_alerts
from warning.response.tokens import Principal

log = structlog.get_logger()
router = APIRouter(prefix="/v1/silences", tags=["silences"])
Officer = Annotated[Principal, Depends(require("officer"))]


def scope_of(rt: Runtime, request: SilenceRequest) -> str | None:
    """The area a silence reaches: its area matcher, else its station's area."""
    m = request.matchers
    if m.area:
        return m.area
    if m.station:
        area = rt.container.directory.area_of_station(m.station)
        return None if area.startswith("station:") else area
    return None


def covers_alert(silence: SilenceRequest, alert: dict[str, Any], scope: str | None) -> bool:
    m = silence.matchers
    return (alert["source"] != "manual"  # a silence never hides an alert made by hand
            and (m.hazard is None or m.hazard == alert["hazard"])
            and (scope is None or inside(alert["area"], scope) or inside(scope, alert["area"])))


async def _covered(rt: Runtime, silence: SilenceRequest) -> list[dict[str, Any]]:
    scope = scope_of(rt, silence)
    return [a for a in await active_alerts(rt.container.store) if covers_alert(silence, a, scope)]


async def _resweep(rt: Runtime, silence: Silence, who: Principal) -> None:
    c = rt.container
    for alert in await _covered(rt, silence):
        found = await c.store.alerts.summary(alert["alert_id"])
        if found:
            key = found.key
            cmd = Command(command_id=f"{silence.silence_id}.{alert['alert_id']}", op="resweep", alert_key=str(key),
                          alert_id=alert["alert_id"], at=time.time(), body={"silence_id": silence.silence_id},
                          actor=Actor(id=who.id, role=who.role, level=who.level, area=who.area))
            await rt.publish(c.topics.control, cmd.alert_key, cmd.model_dump_json().encode(),
                             partition=partition_of(cmd.alert_key, c.settings.partitions))


def _view(silence: Silence) -> dict[str, Any]:
    return {**silence.model_dump(mode="json"), "status": silence.status(time.time())}


@router.post("", status_code=201, summary="Silence sources (station, rule, hazard, area, source) for a while")
async def add_silence(body: SilenceRequest, rt: Annotated[Runtime, Depends(runtime)], who: Officer) -> dict[str, Any]:
    scope = scope_of(rt, body)
    if who.role != "admin" and (scope is None or not inside(scope, who.area or "~")):
        raise HTTPException(403, f"a silence must lie inside your jurisdiction ({who.area or '-'}): give "
                                 "matchers.area (or a station of the directory) inside it")
    red = [a["alert_id"] for a in await _covered(rt, body) if a["tier"] == "red"]
    silence = new_silence(body, who.id, needs_approval=bool(red))
    await rt.container.silences.save(silence)
    log.info("silence_added", silence_id=silence.silence_id, by=who.id, needs_approval=bool(red), covers_red=red)
    if silence.status(time.time()) == "active":
        await _resweep(rt, silence, who)
    return {"silence_id": silence.silence_id, "status": silence.status(time.time()), "covers_red_alerts": red}


@router.get("", summary="Every silence with its status")
async def list_silences(rt: Annotated[Runtime, Depends(runtime)],
                        _: Annotated[Principal, Depends(require("officer", "issuer"))]) -> list[dict[str, Any]]:
    return [_view(s) for s in await rt.container.silences.all()]


async def _mine(rt: Runtime, silence_id: str, who: Principal) -> Silence:
    silence = await rt.container.silences.get(silence_id)
    if silence is None:
        raise HTTPException(404, f"no silence {silence_id!r}")
    scope = scope_of(rt, silence)
    if who.role != "admin" and (scope is None or not inside(scope, who.area or "~")):
        raise HTTPException(403, f"silence {silence_id} is outside your jurisdiction ({who.area or '-'})")
    return silence


@router.post("/{silence_id}/approve", summary="Second officer's approval of a silence over an active red alert")
async def approve_silence(silence_id: str, rt: Annotated[Runtime, Depends(runtime)], who: Officer) -> dict[str, Any]:
    silence = await _mine(rt, silence_id, who)
    if silence.status(time.time()) != "pending_approval":
        raise HTTPException(409, f"silence {silence_id} is {silence.status(time.time())}: nothing to approve")
    if silence.author == who.id:
        raise HTTPException(403, f"two-person rule: {who.id} made silence {silence_id} and may not approve it")
    silence = silence.model_copy(update={"approved_by": who.id})
    await rt.container.silences.save(silence)
    await _resweep(rt, silence, who)
    return _view(silence)


@router.delete("/{silence_id}", summary="Expire a silence now")
async def expire_silence(silence_id: str, rt: Annotated[Runtime, Depends(runtime)], who: Officer) -> dict[str, Any]:
    await _mine(rt, silence_id, who)
    silence = await rt.container.silences.expire(silence_id)
    assert silence is not None
    log.info("silence_expired", silence_id=silence_id, by=who.id)
    return _view(silence)
