"""Parse observation messages: one JSON object or an array of them, per message.

Pure: bytes in, readings and refusals out. A bad item in a batch is refused on its own
(with its index and the field at fault) and the good ones still go through.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from warning.models import Observation, Rejection

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
_BATCH = TypeAdapter(list[Observation])


@dataclass
class Parsed:
    observations: list[Observation] = field(default_factory=list)
    refused: list[tuple[bytes, str]] = field(default_factory=list)  # (original bytes, reason)


def _explain(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'record'}: {err['msg']}" for err in exc.errors()
    )


def parse_observations(raw: bytes | None) -> Parsed:
    result = Parsed()
    if not raw:
        result.refused.append((raw or b"", "empty message"))
        return result
    if len(raw) > MAX_MESSAGE_BYTES:
        result.refused.append((raw, f"message is {len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES}"))
        return result
    try:
        decoded: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        result.refused.append((raw, f"not valid JSON: {exc}"))
        return result
    batch = isinstance(decoded, list)
    if batch:
        try:  # the common case, a clean batch: validated in one call to pydantic-core
            result.observations = _BATCH.validate_python(decoded)
            return result
        except ValidationError:
            pass  # find out which items are bad, one by one, below
    items = decoded if batch else [decoded]
    for index, item in enumerate(items):
        where = f"item {index}: " if batch else ""
        if not isinstance(item, dict):
            result.refused.append((orjson.dumps(item), f"{where}expected a JSON object, got {type(item).__name__}"))
            continue
        try:
            result.observations.append(Observation.model_validate(item))
        except ValidationError as exc:
            result.refused.append((orjson.dumps(item) if batch else raw, where + _explain(exc)))
    return result


def rejection(stage: str, reason: str, source_topic: str, key: bytes | str | None, payload: bytes) -> Rejection:
    """Wrap refused bytes for ``warning.rejected``, keeping them exactly (base64 if not UTF-8)."""
    try:
        text, encoding = payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(payload).decode("ascii"), "base64"
    if isinstance(key, bytes):
        key = key.decode("utf-8", errors="replace")
    return Rejection(stage=stage, reason=reason, source_topic=source_topic, key=key, payload=text,
                     payload_encoding=encoding, rejected_at=datetime.now(UTC))  # type: ignore[arg-type]
