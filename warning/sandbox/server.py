"""The sandbox app: every provider router on one port (`warning sandbox`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from warning.config import Settings
from warning.delivery.providers import sandbox_state
from warning.sandbox import cbc, credentials, fcm, grid, twilio, webpush
from warning.sandbox.recorder import Recorder
from warning.sandbox.smsc import SandboxSmsc
from warning.sandbox.smsc import router as smsc_router


def create_sandbox(settings: Settings) -> FastAPI:
    state = sandbox_state(settings)
    credentials.ensure(state, settings.sandbox_url)
    recorder = Recorder(settings.sink_dir)
    loopback = settings.sandbox_host in ("127.0.0.1", "localhost", "::1")
    smsc = SandboxSmsc(recorder, "127.0.0.1" if loopback else "0.0.0.0", settings.sandbox_smpp_port)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await smsc.start()
        yield
        await smsc.stop()
        recorder.close()

    app = FastAPI(title="warning provider sandbox", lifespan=lifespan)
    app.include_router(twilio.router(recorder))
    app.include_router(fcm.router(recorder, state))
    app.include_router(webpush.router(recorder, state, settings.sandbox_url))
    app.include_router(grid.router(recorder))
    app.include_router(cbc.router(recorder))
    app.include_router(smsc_router(smsc))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
