"""The sandbox app: every provider router on one port (`warning sandbox`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from warning.config import Settings
from warning.delivery.providers import sandbox_state
from warning.sandbox import credentials, fcm, grid, twilio, webpush
from warning.sandbox.recorder import Recorder


def create_sandbox(settings: Settings) -> FastAPI:
    state = sandbox_state(settings)
    credentials.ensure(state, settings.sandbox_url)
    recorder = Recorder(settings.sink_dir)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        recorder.close()

    app = FastAPI(title="warning provider sandbox", lifespan=lifespan)
    app.include_router(twilio.router(recorder))
    app.include_router(fcm.router(recorder, state))
    app.include_router(webpush.router(recorder, state, settings.sandbox_url))
    app.include_router(grid.router(recorder))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
