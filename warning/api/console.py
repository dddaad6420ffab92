"""The duty console: one HTML page (plain JS, no build step) and its live stream (SSE)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from importlib import resources
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from shapely.geometry import mapping

from warning.api.alerts import alert_summaries
from warning.api.auth import caller
from warning.api.deps import Runtime, runtime
from warning.areas import covers, inside
from warning.control.replies import pending_approvals
from warning.response.tokens import Principal

router = APIRouter(tags=["console"])


@router.get("/console", response_class=HTMLResponse, include_in_schema=False)
async def console_page() -> HTMLResponse:
    return HTMLResponse(resources.files("warning.api").joinpath("static/console.html").read_text(encoding="utf-8"))


@router.get("/v1/me", summary="Who the token belongs to")
async def me(who: Annotated[Principal, Depends(caller)]) -> dict[str, Any]:
    return who.model_dump()


def _sees(who: Principal, code: str) -> bool:
    if who.role == "admin":
        return True
    if who.role == "grid_worker":
        return any(inside(g, code) or inside(code, g) for g in who.grids)
    return bool(who.area) and covers(who.area, code)


@router.get("/v1/map", summary="The caller's jurisdiction for the console: grids, area names, hazards")
async def console_map(rt: Annotated[Runtime, Depends(runtime)],
                      who: Annotated[Principal, Depends(caller)]) -> dict[str, Any]:
    c = rt.container
    await c.refresh_grids()
    grids = []
    for grid in c.grids.grids:
        if _sees(who, grid.id):
            shape = mapping(grid.geometry)
            rings = shape["coordinates"] if shape["type"] == "Polygon" else [r for p in shape["coordinates"] for r in p]
            grids.append({"id": grid.id, "name": grid.name, "rings": [[list(pt) for pt in ring] for ring in rings]})
    d = c.directory
    areas = {a.code: {"zh-CN": a.name, "en": a.name_en or a.name} for a in [d.city, *d.areas]}
    areas.update({g.id: {"zh-CN": g.name, "en": g.name} for g in c.grids.grids if g.id not in areas})
    hazards = {h: {"zh-CN": c.templates.hazard_name(h, "zh-CN"), "en": c.templates.hazard_name(h, "en"),
                   "tiers": [t for t in ("blue", "yellow", "orange", "red") if c.templates.has_tier(h, t)]}
               for h in sorted({r.hazard for r in c.pack.rules} | set(c.pack.cap.events))}
    mine = [code for code in areas if who.role == "admin" or inside(code, who.area or "~")]
    return {"grids": grids, "areas": areas, "hazards": hazards, "timezone": d.timezone, "issuable_areas": mine}


@router.get("/v1/grids/{grid_id}", summary="One grid: its staff (no addresses) and the alerts covering it")
async def grid_detail(grid_id: str, rt: Annotated[Runtime, Depends(runtime)],
                      who: Annotated[Principal, Depends(caller)]) -> dict[str, Any]:
    c = rt.container
    grid = c.grids.by_id.get(grid_id)
    if grid is None or not _sees(who, grid_id):
        raise HTTPException(404, f"no grid {grid_id!r} in your jurisdiction")
    workers, officers = await c.recipients.staff([grid_id])
    people = [{"id": p["id"], "name": p.get("name", ""), "role": "grid_worker"} for p in workers.get(grid_id, [])]
    people += [{"id": o["id"], "name": o.get("name", ""), "role": "officer", "level": o.get("level", "")}
               for o in officers if inside(grid_id, o.get("jurisdiction") or "~")]
    alerts = [a for a in await alert_summaries(rt) if grid_id in a["grids"]]
    return {"id": grid_id, "name": grid.name, "staff": people, "alerts": alerts}


@router.get("/v1/stream", summary="Server-sent events: the active alerts whenever they change")
async def stream(request: Request, rt: Annotated[Runtime, Depends(runtime)],
                 _: Annotated[Principal, Depends(caller)]) -> StreamingResponse:
    """EventSource cannot send headers: the token may come as ``?access_token=`` (never logged)."""

    async def events() -> AsyncIterator[bytes]:
        last, last_approvals, quiet = b"", b"", 0
        while not await request.is_disconnected():
            snapshot = orjson.dumps(await alert_summaries(rt))
            approvals = orjson.dumps(await pending_approvals(rt.container.redis, rt.container.keys))
            if approvals != last_approvals:
                last_approvals, quiet = approvals, 0
                yield b"event: approvals\ndata: " + approvals + b"\n\n"
            if snapshot != last:
                last, quiet = snapshot, 0
                yield b"event: alerts\ndata: " + snapshot + b"\n\n"
            else:
                quiet += 1
                if quiet % 15 == 0:
                    yield b": keep-alive\n\n"
            await asyncio.sleep(rt.settings.console_refresh_s)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
