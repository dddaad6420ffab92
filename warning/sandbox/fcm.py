"""FCM HTTP v1 and Google's OAuth2 token endpoint, as google-auth and our client see them.

The token endpoint checks the service account's signed JWT grant against the public key
of the sandbox's service-account file. Registration tokens select the behaviour:
``unregistered-…`` 404 UNREGISTERED, ``invalid-…`` 400 INVALID_ARGUMENT,
``unavailable-…`` 503 UNAVAILABLE, ``slow-…`` no answer; any other token is accepted.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from google.auth import jwt

from warning.sandbox import credentials
from warning.sandbox.recorder import Recorder

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # google-auth's grant audience, whatever token_uri is


def fcm_error(status: int, code: str, message: str, fcm_code: str = "") -> JSONResponse:
    details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}] \
        if fcm_code else []
    return JSONResponse({"error": {"code": status, "message": message, "status": code, "details": details}},
                        status_code=status)


def router(recorder: Recorder, state: Path) -> APIRouter:
    api = APIRouter()
    issued: set[str] = set()

    @api.post("/token")
    async def token(request: Request) -> Response:
        form = await request.form()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        try:
            claims: dict[str, Any] = jwt.decode(  # type: ignore[no-untyped-call]
                str(form.get("assertion", "")), certs=credentials.public_pem(state),
                                                audience=[str(request.url), GOOGLE_TOKEN_URI])
        except ValueError as exc:
            return JSONResponse({"error": "invalid_grant", "error_description": str(exc)}, status_code=400)
        access = f"ya29.sandbox-{secrets.token_urlsafe(24)}"
        issued.add(access)
        return JSONResponse({"access_token": access, "expires_in": 3600, "token_type": "Bearer",
                             "scope": claims.get("scope", "")})

    @api.post("/v1/projects/{project}/messages:send")
    async def send(project: str, request: Request) -> Response:
        if request.headers.get("authorization", "").removeprefix("Bearer ") not in issued:
            return fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        try:
            message = orjson.loads(await request.body())["message"]
            token = message["token"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return fcm_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.", "INVALID_ARGUMENT")
        if token.startswith("unregistered-"):
            return fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
        if token.startswith("invalid-"):
            return fcm_error(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token",
                             "INVALID_ARGUMENT")
        if token.startswith("unavailable-"):
            return fcm_error(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE")
        if token.startswith("slow-"):
            await asyncio.sleep(3600)
        name = f"projects/{project}/messages/{secrets.randbelow(10**16)}"
        android = message.get("android", {})
        recorder.record("push", {"delivery_id": message.get("data", {}).get("delivery_id", ""), "via": "fcm",
                                 "token": token, "name": name, "data": message.get("data", {}),
                                 "priority": android.get("priority"), "ttl": android.get("ttl"),
                                 "collapse_key": android.get("collapse_key")})
        return JSONResponse({"name": name})

    return api
