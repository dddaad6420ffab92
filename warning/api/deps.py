"""What request handlers share, built once in the app's lifespan (no I/O at import)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from fastapi import Request

from warning.bootstrap import Container
from warning.config import Settings
from warning.delivery.providers import TwilioAccount
from warning.delivery.receipts import KafkaReceiptLog, Receipts
from warning.models import Ack
from warning.response.tokens import TokenStore


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    container: Container
    twilio: TwilioAccount
    producer: AIOKafkaProducer
    receipt_log: KafkaReceiptLog
    now: Callable[[], datetime] = field(default=_utcnow)

    @property
    def settings(self) -> Settings:
        return self.container.settings

    @property
    def tokens(self) -> TokenStore:
        return TokenStore(self.container.redis, self.container.keys)

    async def publish(self, topic: str, key: str, value: bytes, partition: int | None = None) -> None:
        """Written with acks=all before the caller hears back."""
        await self.producer.send_and_wait(topic, key=key.encode(), value=value, partition=partition)

    @property
    def receipts(self) -> Receipts:
        return Receipts(self.container.store, self.receipt_log)

    async def publish_ack(self, ack: Ack) -> None:
        """The audit trail: written to Kafka with acks=all before the caller hears back."""
        await self.producer.send_and_wait(self.container.topics.acks, key=ack.alert_id.encode(),
                                          value=ack.model_dump_json().encode())


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt
