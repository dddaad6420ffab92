"""structlog JSON logging. Phone numbers are masked and secrets dropped on every line."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_PHONE = re.compile(r"\+?\d[\d\s-]{6,}\d")
_SECRET_KEYS = {"token", "auth_token", "password", "secret", "api_key", "authorization"}
_PHONE_KEYS = {"phone", "to", "from_", "msisdn", "address"}


def mask_phone(number: str) -> str:
    """+8613812345678 -> +86138****5678: enough to tell numbers apart, not to call one."""
    digits = number.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return f"{digits[:-8]}****{digits[-4:]}"


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        lowered = key.lower()
        if lowered in _SECRET_KEYS:
            event[key] = "[redacted]"
        elif lowered in _PHONE_KEYS and isinstance(event[key], str) and _PHONE.fullmatch(event[key]):
            event[key] = mask_phone(event[key])
    return event


def configure_logging(level: str = "INFO") -> None:
    """Call once from a process entry point (never at import)."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    logging.basicConfig(stream=sys.stderr, level=max(numeric, logging.WARNING), format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
