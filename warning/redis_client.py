"""The asyncio Redis client every pipeline process uses: commands packed by hiredis.

redis-py packs a command in C (hiredis) on its synchronous connections, but its asyncio
connection packs every argument in Python. That was 16 % of a delivery consumer's CPU in
the fan-out drain (py-spy), where a status change of 500 deliveries is one script call of
2,000 arguments; 2 % with hiredis. The packer here is redis-py's own hiredis serializer,
so the bytes on the wire are the same (a test checks).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.connection import HiredisRespSerializer
from redis.utils import HIREDIS_AVAILABLE


class HiredisPackedConnection(aioredis.Connection):
    _packer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        packed: list[bytes] = self._packer.pack(*args)
        return packed


def where(client: Any) -> dict[str, str]:
    """Which Redis a retry log line is about: its address and the setting that names it (never a password)."""
    kw = client.connection_pool.connection_kwargs
    return {"redis": f"{kw.get('host', kw.get('path', '?'))}:{kw.get('port', '')}/{kw.get('db', 0)}",
            "setting": "WARNING_REDIS_URL"}


def connect(url: str, **options: Any) -> aioredis.Redis:
    """A client for ``url``; plain TCP connections pack with hiredis when it is installed
    (a ``rediss://`` or ``unix://`` URL picks its own connection class, as redis-py does)."""
    if HIREDIS_AVAILABLE:
        options.setdefault("connection_class", HiredisPackedConnection)
    return aioredis.Redis.from_url(url, **options)
