"""The duty console: one HTML page (plain JS, no build step) and its live stream (SSE)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from importlib import resources
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from warning.api.alerts import alert_summaries
from warning.api.auth import caller
from warning.api.deps import Runtime, runtime
from warning.response.tokens import Principal

router = APIRouter(tags=["console"])


@router.get("/console", response_class=HTMLResponse, include_in_schema=False)
async def console_page() -> HTMLResponse:
    return HTMLResponse(resources.files("warning.api").joinpath("static/console.html").read_text(encoding="utf-8"))


@router.get("/v1/me", summary="Who the token belongs to")
async def me(who: Annotated[Principal, Depends(caller)]) -> dict[str, Any]:
    return who.model_dump()


@router.get("/v1/stream", summary="Server-sent events: the active alerts whenever they change")
async def stream(request: Request, rt: Annotated[Runtime, Depends(runtime)],
                 _: Annotated[Principal, Depends(caller)]) -> StreamingResponse:
    """EventSource cannot send headers: the token may come as ``?access_token=`` (never logged)."""

    async def events() -> AsyncIterator[bytes]:
        last, quiet = b"", 0
        while not await request.is_disconnected():
            snapshot = orjson.dumps(await alert_summaries(rt))
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
