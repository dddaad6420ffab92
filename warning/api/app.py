"""The API application (`warning api`): one FastAPI app, its routers, its lifespan.

OpenAPI is at /openapi.json and /docs. Every request is logged with the caller's id and
role (never the token, and never the query string, which may carry it for EventSource).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request, Response

from warning import heap
from warning.api import alerts, console, control, feeds, ops, silences, twilio_hooks
from warning.api.deps import Runtime
from warning.bootstrap import Container
from warning.delivery.providers import twilio_account
from warning.delivery.receipts import KafkaReceiptLog

log = structlog.get_logger()


def create_api(container: Container) -> FastAPI:
    s = container.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all", enable_idempotence=True,
                                    linger_ms=2)
        receipt_log = KafkaReceiptLog(s.kafka_bootstrap, container.topics.receipts, wait=False)
        await producer.start()
        await receipt_log.start()
        app.state.runtime = Runtime(container, twilio_account(s), producer, receipt_log)
        heap.settle(s.gc_threshold)
        try:
            yield
        finally:
            await receipt_log.close()
            await producer.stop()
            await container.redis.aclose()

    app = FastAPI(title="Early-warning dispatch API", version="0.1.0", lifespan=lifespan,
                  description="Feeds in, alerts out, acknowledgements, escalation, provider callbacks.")
    for module in (feeds, control, alerts, silences, console, ops, twilio_hooks):
        app.include_router(module.router)

    @app.middleware("http")
    async def access_log(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        principal = getattr(request.state, "principal", None)
        if request.url.path not in ("/healthz", "/metrics", "/v1/stream"):
            log.info("http_request", method=request.method, path=request.url.path, status=response.status_code,
                     ms=round((time.perf_counter() - started) * 1000, 1),
                     caller=principal.id if principal else None, role=principal.role if principal else None)
        return response

    return app
