"""The API application (`warning api`): one FastAPI app, its routers, its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from warning.api import twilio_hooks
from warning.api.deps import Runtime
from warning.bootstrap import Container
from warning.delivery.providers import twilio_account
from warning.delivery.receipts import KafkaReceiptLog


def create_api(container: Container) -> FastAPI:
    s = container.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all", enable_idempotence=True,
                                    linger_ms=2)
        receipt_log = KafkaReceiptLog(s.kafka_bootstrap, container.topics.receipts)
        await producer.start()
        await receipt_log.start()
        app.state.runtime = Runtime(container, twilio_account(s), producer, receipt_log)
        try:
            yield
        finally:
            await receipt_log.close()
            await producer.stop()
            await container.redis.aclose()

    app = FastAPI(title="Early-warning dispatch API", version="0.1.0", lifespan=lifespan)
    app.include_router(twilio_hooks.router)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is up (see /readyz for its dependencies)."""
        return {"status": "ok"}

    return app
