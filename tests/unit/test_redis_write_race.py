"""A connection closed under a write is an outage (ConnectionError), not a crash: redis-py
8.1 lets the transport's AttributeError / TypeError through (redis/redis-py#4287)."""

from __future__ import annotations

import pytest
from redis import exceptions

from warning.redis_client import HiredisPackedConnection


class ClosedTransportWriter:
    """A StreamWriter whose transport the event loop tore down (peer reset, or another task
    disconnected the connection) between the connection check and the write."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.closed = False

    def writelines(self, data: object) -> None:
        raise self.error

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def closing(error: Exception) -> tuple[HiredisPackedConnection, ClosedTransportWriter]:
    conn = HiredisPackedConnection(host="10.0.0.7", port=7001, socket_timeout=None)
    writer = ClosedTransportWriter(error)
    conn._reader, conn._writer = object(), writer  # type: ignore[assignment]
    return conn, writer


@pytest.mark.parametrize("error", [TypeError("'NoneType' object is not callable"),
                                   AttributeError("'NoneType' object has no attribute 'writelines'")])
async def test_a_write_on_a_connection_closed_under_it_raises_connection_error(error: Exception) -> None:
    conn, writer = closing(error)
    with pytest.raises(exceptions.ConnectionError, match=r"connection to 10\.0\.0\.7:7001 closed under a write"):
        await conn.send_packed_command(conn.pack_command("SET", "k", "v"), check_health=False)
    assert writer.closed and not conn.is_connected  # dropped: the retry takes a fresh connection


async def test_any_other_type_error_is_left_as_the_defect_it_is() -> None:
    conn, _ = closing(TypeError("a bytes-like object is required, not 'int'"))
    with pytest.raises(TypeError, match="bytes-like"):
        await conn.send_packed_command([b"PING"], check_health=False)
