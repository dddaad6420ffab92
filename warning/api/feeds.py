"""Feed publishers: observations (JSON, a JSON array, or JSONL) and CAP XML.

202 means written to Kafka with acks=all. A request with any bad record is refused whole
(422, every bad record named by line / index and field) so a publisher never has to work
out which half of a batch got in; nothing is silently dropped.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import ValidationError

from warning.api.auth import require
from warning.api.deps import Runtime, runtime
from warning.cap.model import read_message
from warning.cap.preview import drives_nothing
from warning.cap.validate import validate_cap
from warning.feeds import batch_by_partition
from warning.models import Observation
from warning.response.tokens import Principal

log = structlog.get_logger()
router = APIRouter(prefix="/v1/feeds", tags=["feeds"])
MAX_CAP_BYTES = 1_000_000


async def body_within(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body of {declared} bytes exceeds the limit of {limit}")
    body = await request.body()
    if len(body) > limit:
        raise HTTPException(413, f"body of {len(body)} bytes exceeds the limit of {limit}")
    if not body.strip():
        raise HTTPException(400, "empty body")
    return body


def records_of(body: bytes, content_type: str) -> list[tuple[str, Any]]:
    """(where, decoded value) per record: a JSON object or array, or one JSON value per line."""
    if "ndjson" in content_type or "jsonl" in content_type:
        out = []
        for number, line in enumerate(body.splitlines(), start=1):
            if line.strip():
                try:
                    out.append((f"line {number}", orjson.loads(line)))
                except orjson.JSONDecodeError as exc:
                    out.append((f"line {number}", exc))
        return out
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(400, f"body is not valid JSON: {exc} (send JSONL as application/x-ndjson)") from exc
    return [(f"item {i}", v) for i, v in enumerate(value)] if isinstance(value, list) else [("body", value)]


@router.post("/observations", status_code=202, summary="Push sensor readings")
async def post_observations(request: Request, rt: Annotated[Runtime, Depends(runtime)],
                            who: Annotated[Principal, Depends(require("publisher"))]) -> dict[str, Any]:
    s = rt.settings
    body = await body_within(request, s.api_max_body_bytes)
    records = records_of(body, request.headers.get("content-type", ""))
    if len(records) > s.api_max_records:
        raise HTTPException(413, f"{len(records)} records; at most {s.api_max_records} per request")
    errors, good = [], []
    for where, value in records:
        if isinstance(value, Exception):
            errors.append({"at": where, "field": None, "error": f"not valid JSON: {value}"})
            continue
        try:
            good.append(Observation.model_validate(value).model_dump(mode="json", exclude_none=True))
        except ValidationError as exc:
            errors += [{"at": where, "field": ".".join(str(p) for p in e["loc"]) or None, "error": e["msg"]}
                       for e in exc.errors()]
    if errors:
        raise HTTPException(422, {"message": f"{len(errors)} problem(s); nothing was accepted", "errors": errors})
    topic = rt.container.topics.observations
    sends = [await rt.producer.send(topic, key=key.encode(), value=value, partition=partition)
             for partition, key, value in batch_by_partition(good, s.partitions, 500)]
    await asyncio.gather(*sends)  # acks=all: every batch is on the in-sync replicas
    log.info("feed_accepted", kind="observations", readings=len(good), publisher=who.id)
    return {"accepted": len(good), "topic": topic}


@router.post("/cap", status_code=202, summary="Push one CAP 1.1 / 1.2 message (XML)")
async def post_cap(request: Request, rt: Annotated[Runtime, Depends(runtime)],
                   who: Annotated[Principal, Depends(require("publisher"))]) -> dict[str, Any]:
    body = await body_within(request, MAX_CAP_BYTES)
    verdict = await asyncio.to_thread(validate_cap, body)
    if not verdict.valid:
        raise HTTPException(422, {"message": "not a valid CAP message; nothing was accepted",
                                  "errors": verdict.errors})
    match = re.search(rb"<(?:\w+:)?identifier>\s*([^<\s]+)\s*</", body)
    identifier = match.group(1).decode() if match else "unparsed"
    warnings = list(verdict.warnings)
    if verdict.root is not None and verdict.version is not None:
        c = rt.container
        warnings += drives_nothing(read_message(verdict.root, verdict.version), c.pack.cap, c.directory)
    await rt.publish(rt.container.topics.cap, identifier, body)
    log.info("feed_accepted", kind="cap", identifier=identifier, publisher=who.id, warnings=len(warnings))
    return {"accepted": 1, "identifier": identifier, "warnings": warnings,
            "topic": rt.container.topics.cap}
