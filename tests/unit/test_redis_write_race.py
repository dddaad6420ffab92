"""A connection closed under a write is an outage (ConnectionError), not a crash: redis-py
8.1 lets the transport's AttributeError / TypeError through (redis/redis-py#4287; 8.2 turns
them into ConnectionError itself when the transport is closing), and under uvloop a write
on a transport the loop has closed raises RuntimeError. The tests hold for both versions."""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from redis import exceptions

from warning.redis_client import HiredisPackedConnection

# Either message: ours (8.1, naming the server) or redis-py's own (8.2).
CLOSED = r"closed under a write|closed by the server (before|while) writ"


class Transport:
    def __init__(self) -> None:
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing


class ClosedTransportWriter:
    """A StreamWriter whose transport the event loop tore down (peer reset, or another task
    disconnected the connection) between the connection check and the write; with
    ``closes=False`` the write fails on a transport that stays open (a defect, not an outage)."""

    def __init__(self, error: Exception, closes: bool = True) -> None:
        self.error = error
        self.closes = closes
        self.closed = False
        self.transport = Transport()

    def writelines(self, data: object) -> None:
        self.transport.closing = self.closes
        raise self.error

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def closing(error: Exception, closes: bool = True) -> tuple[HiredisPackedConnection, ClosedTransportWriter]:
    conn = HiredisPackedConnection(host="10.0.0.7", port=7001, socket_timeout=None)
    writer = ClosedTransportWriter(error, closes)
    conn._reader, conn._writer = object(), writer  # type: ignore[assignment]
    return conn, writer


@pytest.mark.parametrize("error", [TypeError("'NoneType' object is not callable"),
                                   AttributeError("'NoneType' object has no attribute 'writelines'")])
async def test_a_write_on_a_connection_closed_under_it_raises_connection_error(error: Exception) -> None:
    conn, writer = closing(error)
    with pytest.raises(exceptions.ConnectionError, match=CLOSED):
        await conn.send_packed_command(conn.pack_command("SET", "k", "v"), check_health=False)
    assert writer.closed and not conn.is_connected  # dropped: the retry takes a fresh connection


async def test_any_other_type_error_is_left_as_the_defect_it_is() -> None:
    conn, _ = closing(TypeError("a bytes-like object is required, not 'int'"), closes=False)
    with pytest.raises(TypeError, match="bytes-like"):
        await conn.send_packed_command([b"PING"], check_health=False)


def test_a_write_on_a_transport_uvloop_has_closed_raises_connection_error() -> None:
    """The real uvloop transport, closed by the loop (as when the Redis master is killed
    while a command is being written): its RuntimeError is an outage, retried elsewhere."""

    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        await asyncio.sleep(0)
        conn = HiredisPackedConnection(host="127.0.0.1", port=port, socket_timeout=None)
        conn._reader, conn._writer = reader, writer
        try:
            with pytest.raises(exceptions.ConnectionError, match=CLOSED):
                await conn.send_packed_command(conn.pack_command("SET", "k", "v"), check_health=False)
            assert not conn.is_connected
        finally:
            server.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


async def test_any_other_runtime_error_is_left_as_the_defect_it_is() -> None:
    conn, _ = closing(RuntimeError("Event loop is closed"), closes=False)
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        await conn.send_packed_command([b"PING"], check_health=False)
