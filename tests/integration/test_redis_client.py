"""The pipeline's asyncio Redis client packs commands with hiredis: the same bytes as
redis-py's own packer, and the same answers from the real Redis."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio.connection import Connection, SSLConnection

from warning import redis_client
from warning.config import Settings

pytestmark = pytest.mark.integration

arguments = st.lists(st.one_of(st.text(), st.binary(), st.integers(-2**63, 2**64), st.floats(allow_nan=False)),
                     max_size=30)


@given(st.sampled_from(["EVALSHA", "CONFIG GET", b"CLIENT SETNAME", "HSET"]), arguments)
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
