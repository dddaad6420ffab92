"""A Cell Broadcast Centre's ECBE REST interface, in osmo-cbc's shape, that records what it
got in ``cell_broadcast.jsonl`` and keeps the messages it is broadcasting.

Messages are keyed by CBS message identifier, area (``scope_area``; osmo-cbc's own
``scope_plmn`` is one key for the whole network) and message code: a POST of a known key
with a new update number is an update, a DELETE ends it (404 when nothing matches).
``POST /cbc/sandbox/fail`` makes the next requests answer an error, for tests.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from warning.sandbox.recorder import Recorder


class SerialDecoded(BaseModel):
    geo_scope: str
    msg_code: int = Field(ge=0, le=1023)
    update_nr: int = Field(ge=0, le=15)


class PayloadDecoded(BaseModel):
    character_set: str = "gsm"
    language: str | None = None
    data_utf8: str = Field(min_length=1)


class SmscbMessage(BaseModel):
    message_id: int = Field(ge=0, le=65535)
    serial_nr: dict[str, SerialDecoded]
    payload: dict[str, PayloadDecoded]


class CbcMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cbe_name: str = ""
    category: str = "normal"
    repetition_period: int = Field(default=60, ge=1, le=4095)
    num_of_bcast: int = Field(default=0, ge=0, le=65535)
    scope: dict[str, dict[str, Any]]
    warning_period_sec: int | None = None
    smscb_message: SmscbMessage


def _area(scope: dict[str, Any] | None) -> str:
    return str((scope or {}).get("scope_area", {}).get("area_code", "plmn"))


def router(recorder: Recorder) -> APIRouter:
    api = APIRouter(prefix="/cbc", tags=["sandbox"])
    active: dict[tuple[int, str, int], dict[str, Any]] = {}
    failures: list[int] = []

    def failing() -> JSONResponse | None:
        return JSONResponse({"error": "sandbox fault"}, status_code=failures.pop(0)) if failures else None

    @api.post("/api/ecbe/v1/message")
    async def create(request: Request) -> Any:
        if (fault := failing()) is not None:
            return fault
        try:
            message = CbcMessage.model_validate_json(await request.body())
        except ValidationError as exc:
            raise HTTPException(400, f"REST: bad cbc_message: {exc.errors()[0]['msg']}") from exc
        sm = message.smscb_message
        serial = next(iter(sm.serial_nr.values()))
        payload = next(iter(sm.payload.values()))
        key = (sm.message_id, _area(message.scope), serial.msg_code)
        op = "update" if key in active else "create"
        active[key] = entry = {
            "op": op, "message_id": sm.message_id, "area": key[1], "msg_code": serial.msg_code,
            "update_nr": serial.update_nr, "text": payload.data_utf8, "language": payload.language,
            "character_set": payload.character_set, "repetition_period": message.repetition_period,
            "num_of_bcast": message.num_of_bcast, "category": message.category, "cbe_name": message.cbe_name}
        recorder.record("cell_broadcast", entry)
        return JSONResponse({"result": "ok"}, status_code=201 if op == "create" else 200)

    @api.delete("/api/ecbe/v1/message/{message_id}")
    async def delete(message_id: int, request: Request) -> Any:
        if (fault := failing()) is not None:
            return fault
        raw = await request.body()
        try:
            detail: dict[str, Any] = orjson.loads(raw) if raw else {}  # osmo-cbc sends none: every area
        except orjson.JSONDecodeError as exc:
            raise HTTPException(400, f"REST: body is not JSON: {exc}") from exc
        area = _area(detail.get("scope"))
        serials: dict[str, dict[str, Any]] = detail.get("serial_nr") or {}
        code = next(iter(serials.values()), {}).get("msg_code")
        gone = [k for k in active if k[0] == message_id and (not detail or (k[1] == area and
                                                                           (code is None or k[2] == code)))]
        if not gone:
            raise HTTPException(404, f"no active message {message_id}")
        for key in gone:
            recorder.record("cell_broadcast", {"op": "delete", "message_id": message_id, "area": key[1],
                                               "msg_code": key[2]})
            del active[key]
        return {"deleted": len(gone)}

    @api.post("/sandbox/fail")
    async def fail(status: int = 503, times: int = 1) -> dict[str, int]:
        failures.extend([status] * times)
        return {"failing": len(failures)}

    return api
