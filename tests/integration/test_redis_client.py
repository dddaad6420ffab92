"""The pipeline's asyncio Redis client packs commands with hiredis: the same bytes as
redis-py's own packer, and the same answers from the real Redis; replies already buffered
are read without a timer each, and a read that waits is still bounded."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import connection as redis_connection
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import DataError
from redis.exceptions import TimeoutError as RedisTimeoutError

from warning import redis_client
from warning.config import Settings

pytestmark = pytest.mark.integration

arguments = st.lists(st.one_of(st.text(), st.binary(), st.integers(-2**63, 2**64), st.floats(allow_nan=False),
                               st.binary().map(bytearray), st.binary().map(memoryview)), max_size=30)


@given(st.sampled_from(["EVALSHA", "CONFIG GET", b"CLIENT SETNAME", "HSET", "SET"]), arguments)
def test_hiredis_packs_the_bytes_redis_py_packs(command: str | bytes, args: list[object]) -> None:
    python, hiredis = Connection(), redis_client.HiredisPackedConnection()
    try:
        expected = b"".join(python.pack_command(command, *args))
    except UnicodeEncodeError:  # a lone surrogate: neither may send it
        with pytest.raises(UnicodeEncodeError):
            hiredis.pack_command(command, *args)
        return
    assert b"".join(hiredis.pack_command(command, *args)) == expected
    assert b"".join(hiredis.pack_commands([(command, *args), ("PING",)])) == \
        b"".join(python.pack_commands([(command, *args), ("PING",)]))


@pytest.mark.parametrize("value", [True, None, [1]])
def test_a_value_redis_py_refuses_is_refused_with_its_error(value: object) -> None:
    with pytest.raises(DataError) as python:
        Connection().pack_command("SET", "k", value)
    with pytest.raises(DataError) as hiredis:
        redis_client.HiredisPackedConnection().pack_command("SET", "k", value)
    assert type(hiredis.value) is type(python.value)


async def test_a_script_call_of_thousands_of_arguments_round_trips(settings: Settings) -> None:
    client = redis_client.connect(settings.redis_url, decode_responses=True)
    try:
        if redis_client.is_cluster(client):  # every node's connections, as they are made
            assert await client.ping()
            made = [node.acquire_connection() for node in client.get_nodes()]  # type: ignore[attr-defined]
            assert made and all(isinstance(c, redis_client.HiredisPackedConnection) for c in made)
        else:
            assert isinstance(client.connection_pool.connection_class(), redis_client.HiredisPackedConnection)
        now = time.time()
        keys = [f"{settings.redis_prefix}:{{big}}:k{i}" for i in range(500)]  # one slot, as a script's keys
        args = [x for i in range(500) for x in (i, now + i, f"文本{i}")]
        total = await client.eval("local s = 0 for i = 1, #ARGV, 3 do redis.call('HSET', KEYS[(i + 2) / 3], "
                                  "'at', ARGV[i + 1], 'text', ARGV[i + 2]) s = s + tonumber(ARGV[i]) end return s",
                                  len(keys), *keys, *args)
        assert total == sum(range(500))
        assert await client.hgetall(keys[7]) == {"at": repr(now + 7), "text": "文本7"}
        await client.unlink(*keys)
    finally:
        await client.aclose()


def test_a_tls_or_socket_url_keeps_its_own_connection_class() -> None:
    client = redis_client.connect("rediss://127.0.0.1:1/0")
    assert client.connection_pool.connection_class is SSLConnection
    socket_client = redis_client.connect("unix:///run/redis/redis.sock?db=0")
    assert socket_client.connection_pool.connection_class is UnixDomainSocketConnection


class CountedTimeouts:
    """redis-py's read timeout, counted: how many replies were read under their own timer."""

    def __init__(self, real: Any) -> None:
        self.real, self.armed = real, 0

    def __call__(self, delay: float | None) -> Any:
        self.armed += 1
        return self.real(delay)


async def test_a_pipeline_reads_buffered_replies_without_a_timer_each_and_answers_the_same(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    if settings.redis_url.startswith(redis_client.CLUSTER_SCHEME):
        pytest.skip("one connection's replies: a single Redis")
    counted = CountedTimeouts(redis_connection.async_timeout)
    monkeypatch.setattr(redis_connection, "async_timeout", counted)
    prefix = f"{settings.redis_prefix}:replies"
    answers: dict[str, list[Any]] = {}
    armed: dict[str, int] = {}
    for name, connection_class in (("redis-py", Connection), ("ours", redis_client.HiredisPackedConnection)):
        client = aioredis.Redis.from_url(settings.redis_url, decode_responses=True, connection_class=connection_class)
        try:
            await client.ping()
            async with client.pipeline(transaction=False) as pipe:
                for i in range(300):
                    pipe.set(f"{prefix}:{name}:{i}", f"值{i}")
                    pipe.get(f"{prefix}:{name}:{i}")
                pipe.incr(f"{prefix}:{name}:7")  # a string that is not a number: an error reply mid-pipeline
                pipe.hgetall(f"{prefix}:{name}:none")
                pipe.expire(f"{prefix}:{name}:0", 60)
                counted.armed = 0
                replies = await pipe.execute(raise_on_error=False)
            armed[name] = counted.armed
            answers[name] = [str(r) if isinstance(r, Exception) else r for r in replies]
            await client.unlink(*(f"{prefix}:{name}:{i}" for i in range(300)))
        finally:
            await client.aclose()
    assert answers["ours"] == answers["redis-py"]
    assert answers["ours"][:4] == [True, "值0", True, "值1"] and answers["ours"][-2:] == [{}, True]
    assert "not an integer" in answers["ours"][-3]
    assert armed["redis-py"] == 603 and 1 <= armed["ours"] <= 30  # only the reads that waited on the socket


async def test_a_redis_that_stops_answering_mid_pipeline_still_times_out() -> None:
    """The first 50 commands are answered, then nothing: the read that has to wait is still bounded."""
    answered = 0

    async def answers_fifty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        while data := await reader.read(65536):
            commands = sum(1 for line in data.split(b"\r\n") if line.startswith(b"*"))  # RESP arrays
            now = min(commands, 50 - answered)
            answered += now
            writer.write(b"+OK\r\n" * now)
            await writer.drain()

    server = await asyncio.start_server(answers_fifty, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = aioredis.ConnectionPool(host="127.0.0.1", port=port, socket_timeout=0.5, retry=Retry(NoBackoff(), 0),
                                   protocol=2,
                                   connection_class=redis_client.HiredisPackedConnection)
    client = aioredis.Redis(connection_pool=pool)
    try:
        async with client.pipeline(transaction=False) as pipe:
            for i in range(100):
                pipe.set(f"k{i}", i)
            started = time.monotonic()
            with pytest.raises(RedisTimeoutError):
                await asyncio.wait_for(pipe.execute(), 10)
        assert time.monotonic() - started < 5 and answered == 50
    finally:
        await client.aclose()
        server.close()
