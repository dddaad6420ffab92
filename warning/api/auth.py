"""Bearer tokens → the caller; roles per route. 401 without a valid token, 403 for a role
or jurisdiction that does not allow the request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from warning.api.deps import Runtime, runtime
from warning.response.tokens import Principal, Role

bearer = HTTPBearer(auto_error=False, description="an API token from `warning tokens create`")


async def caller(request: Request, rt: Annotated[Runtime, Depends(runtime)],
                 credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    token = credentials.credentials if credentials else request.query_params.get("access_token", "")
    principal = await rt.tokens.lookup(token) if token else None
    if principal is None:
        raise HTTPException(401, "a valid API token is required (Authorization: Bearer <token>)",
                            headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = principal  # the access log names the caller
    return principal


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(caller)]) -> Principal:
        if principal.role not in roles and principal.role != "admin":
            raise HTTPException(403, f"role {principal.role!r} may not do this (needs {' or '.join(roles)})")
        return principal
    return check
