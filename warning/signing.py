"""Signed grid webhooks: how we sign, and the helper a grid station verifies with.

Every webhook carries three headers::

    X-Warning-Delivery:  the delivery id (deduplicate on it: a retry repeats it)
    X-Warning-Timestamp: unix seconds when the request was signed
    X-Warning-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>" with the shared secret>

A station recomputes the HMAC over the raw body bytes (before any JSON parsing), compares
in constant time, and refuses a timestamp outside its tolerance (default 5 minutes), so
a captured request cannot be replayed later. Stripe and Slack sign webhooks the same way.

Verification needs only the standard library; copy this module or::

    from warning.signing import verify_webhook
    verify_webhook(secret, body, request.headers)   # raises SignatureError
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

DELIVERY_HEADER = "X-Warning-Delivery"
TIMESTAMP_HEADER = "X-Warning-Timestamp"
SIGNATURE_HEADER = "X-Warning-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300


class SignatureError(ValueError):
    """The request is not from us, was altered, or is too old (a replay)."""


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"{SCHEME}={mac}"


def sign_headers(secret: bytes, body: bytes, delivery_id: str, now: float | None = None) -> dict[str, str]:
    ts = int(time.time() if now is None else now)
    return {DELIVERY_HEADER: delivery_id, TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: signature(secret, ts, body)}


def verify_webhook(secret: bytes, body: bytes, headers: Mapping[str, str], *,
                   tolerance_s: float = DEFAULT_TOLERANCE_S, now: float | None = None) -> str:
    """Check a webhook; returns its delivery id. Raises :class:`SignatureError` with the reason."""
    lower = {k.lower(): v for k, v in headers.items()}
    stamp = lower.get(TIMESTAMP_HEADER.lower(), "")
    given = lower.get(SIGNATURE_HEADER.lower(), "")
    if not stamp.isdigit() or not given:
        raise SignatureError("missing or malformed timestamp / signature header")
    age = (time.time() if now is None else now) - int(stamp)
    if abs(age) > tolerance_s:
        raise SignatureError(f"timestamp {age:.0f}s away from now (tolerance {tolerance_s:.0f}s): replay or clock skew")
    if not hmac.compare_digest(signature(secret, int(stamp), body), given):
        raise SignatureError("signature does not match the body")
    return lower.get(DELIVERY_HEADER.lower(), "")
