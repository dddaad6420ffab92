"""A Web Push service (RFC 8030/8291/8292): hands out subscriptions, checks the VAPID JWT,
decrypts the aes128gcm payload with the subscription's key, records it.

``POST /webpush/subscriptions`` returns a subscription as a browser's
``PushSubscription.toJSON()`` would (``?gone=1``: one whose endpoint answers 410 Gone,
as for a browser that unsubscribed).
"""

from __future__ import annotations

import base64
import secrets
import time
from pathlib import Path
from typing import Any

import http_ece
import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from warning.sandbox.recorder import Recorder


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_vapid(header: str, audience: str) -> dict[str, Any]:
    """``vapid t=<JWT>, k=<public key>``: ES256 signature by k, our origin, not expired."""
    fields = dict(part.strip().split("=", 1) for part in header.removeprefix("vapid ").split(",") if "=" in part)
    token, key = fields.get("t", ""), fields.get("k", "")
    head, payload, signature = token.split(".")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
    raw = unb64url(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, f"{head}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    claims: dict[str, Any] = orjson.loads(unb64url(payload))
    if claims.get("aud") != audience:
        raise ValueError(f"aud {claims.get('aud')!r} is not this push service ({audience})")
    if int(claims.get("exp", 0)) < time.time():
        raise ValueError("VAPID JWT expired")
    return claims


def router(recorder: Recorder, state: Path, base_url: str) -> APIRouter:
    api = APIRouter()
    subs = state / "webpush"

    @api.post("/webpush/subscriptions")
    async def subscribe(gone: bool = False) -> Response:
        key = ec.generate_private_key(ec.SECP256R1())
        auth = secrets.token_bytes(16)
        sub_id = ("gone-" if gone else "") + secrets.token_hex(12)
        subs.mkdir(parents=True, exist_ok=True)
        (subs / f"{sub_id}.json").write_bytes(orjson.dumps({"auth": b64url(auth), "key": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()}))
        point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return JSONResponse({"endpoint": f"{base_url}/webpush/{sub_id}", "expirationTime": None,
                             "keys": {"p256dh": b64url(point), "auth": b64url(auth)}}, status_code=201)

    @api.post("/webpush/{sub_id}")
    async def push(sub_id: str, request: Request) -> Response:
        stored = subs / f"{sub_id}.json"
        if sub_id.startswith("gone-") or not stored.is_file():
            return JSONResponse({"error": "subscription expired or unsubscribed"}, status_code=410)
        try:
            verify_vapid(request.headers.get("authorization", ""), base_url)
        except (ValueError, InvalidSignature) as exc:
            return JSONResponse({"error": f"VAPID: {exc or 'bad signature'}"}, status_code=401)
        sub = orjson.loads(stored.read_bytes())
        try:
            key = serialization.load_pem_private_key(sub["key"].encode(), None)
            plain = http_ece.decrypt(await request.body(), private_key=key, auth_secret=unb64url(sub["auth"]),
                                     version="aes128gcm")
            data = orjson.loads(plain)
        except Exception as exc:  # undecryptable: the sender used the wrong keys
            return JSONResponse({"error": f"cannot decrypt payload: {exc}"}, status_code=400)
        recorder.record("push", {"delivery_id": data.get("delivery_id", ""), "via": "webpush", "subscription": sub_id,
                                 "data": data, "urgency": request.headers.get("urgency"),
                                 "topic": request.headers.get("topic"), "ttl": request.headers.get("ttl")})
        return Response(status_code=201, headers={"Location": f"{base_url}/webpush/messages/{secrets.token_hex(8)}"})

    return api
