"""aiokafka's request written on a transport uvloop has just closed: a broken connection, as
an ``OSError`` from the same write already is.

When a broker resets a connection, uvloop closes the transport at once, and aiokafka's
reader task notices one or two loop iterations later. A request written in between
raises ``RuntimeError("... the handler is closed")`` out of ``AIOKafkaConnection.send``,
which catches only ``OSError`` (asyncio's own loop drops the bytes instead). Measured on a
real broker connection (tests/integration/test_kafka_closed_write.py): the first and
second sends after the close raise it. In a producer that ends the sender routine
("Unexpected error in sender routine"): every pending batch fails with it and nothing is
sent again — the worker's versions, or a consumer's receipts, until the process
restarts. As ``KafkaConnectionError`` the request is retried on a new connection, as
aiokafka does for any broken one. The same fault in redis-py: ``ClosedUnderWrite``
(warning/redis_client.py).
"""

from __future__ import annotations

from typing import Any

from aiokafka.conn import AIOKafkaConnection, CloseReason
from aiokafka.errors import KafkaConnectionError

_INSTALLED = "_warning_closed_write_is_broken_connection"


def install() -> None:
    """Patch ``AIOKafkaConnection.send`` once per process (every connection aiokafka makes
    is one of these)."""
    if getattr(AIOKafkaConnection.send, _INSTALLED, False):
        return
    written = AIOKafkaConnection.send

    def send(self: AIOKafkaConnection, request: Any, expect_response: bool = True) -> Any:
        try:
            return written(self, request, expect_response)
        except RuntimeError as exc:
            if "handler is closed" not in str(exc):
                raise  # not a closed transport: a defect, not an outage
            self.close(reason=CloseReason.CONNECTION_BROKEN)
            raise KafkaConnectionError(f"Connection at {self.host}:{self.port} broken: {exc}") from exc

    setattr(send, _INSTALLED, True)
    AIOKafkaConnection.send = send
