"""Grid stations' webhook receivers: verify the signature as a station must, then record.

The path selects the behaviour: ``…/status-500/…`` answers 500, ``…/status-400/…`` 400,
``…/flaky/…`` 503 the first time per delivery then 200, ``…/slow/…`` never answers.
"""

from __future__ import annotations

import asyncio

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from warning.delivery.providers import SANDBOX_GRID_SECRET
from warning.sandbox.recorder import Recorder
from warning.signing import SignatureError, verify_webhook


def router(recorder: Recorder) -> APIRouter:
    api = APIRouter()
    seen: set[str] = set()
    flaked: set[str] = set()

    @api.post("/grid/{path:path}")
    async def receive(path: str, request: Request) -> Response:
        body = await request.body()
        try:
            delivery_id = verify_webhook(SANDBOX_GRID_SECRET, body, dict(request.headers))
        except SignatureError as exc:
            return JSONResponse({"error": f"signature: {exc}"}, status_code=401)
        parts = path.split("/")
        if "status-500" in parts:
            return JSONResponse({"error": "station down"}, status_code=500)
        if "status-400" in parts:
            return JSONResponse({"error": "station refuses this alert"}, status_code=400)
        if "flaky" in parts and delivery_id not in flaked:
            flaked.add(delivery_id)
            return JSONResponse({"error": "try again"}, status_code=503)
        if "slow" in parts:
            await asyncio.sleep(3600)
        alert = orjson.loads(body)
        recorder.record("grid", {"delivery_id": delivery_id, "path": path, "alert_id": alert.get("alert_id"),
                                 "version": alert.get("version"), "tier": alert.get("tier"),
                                 "text": alert.get("text"), "cap": bool(alert.get("cap")),
                                 "repeat": delivery_id in seen})
        seen.add(delivery_id)
        return JSONResponse({"ok": True})

    return api
