"""The Redis clients every pipeline process uses: commands packed by hiredis, and Redis
reached directly (``redis://``) or through Sentinel (``redis+sentinel://``).

redis-py packs a command in C (hiredis) on its synchronous connections, but its asyncio
connection packs every argument in Python. That was 16 % of a delivery consumer's CPU in
the fan-out drain (py-spy), where a status change of 500 deliveries is one script call of
2,000 arguments; 2 % with hiredis. The packer here is redis-py's own hiredis serializer,
so the bytes on the wire are the same (a test checks).

``redis+sentinel://[:password@]host:port[,host:port…]/SERVICE[/DB]`` names the Sentinels
and the service they watch: the client asks them for the master, and again after a
failover (a single-shard deployment's high availability).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
from redis.asyncio.sentinel import SentinelManagedConnection
from redis.connection import HiredisRespSerializer
from redis.sentinel import Sentinel, SentinelConnectionPool
from redis.utils import HIREDIS_AVAILABLE

SENTINEL_SCHEME = "redis+sentinel://"


class HiredisPackedConnection(aioredis.Connection):
    _packer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        packed: list[bytes] = self._packer.pack(*args)
        return packed


class HiredisPackedSentinelConnection(SentinelManagedConnection):
    _packer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        packed: list[bytes] = self._packer.pack(*args)
        return packed


@dataclass(frozen=True)
class SentinelAddress:
    sentinels: list[tuple[str, int]]
    service: str
    db: int = 0
    password: str | None = None


def parse_sentinel(url: str) -> SentinelAddress:
    """The Sentinels, service and db of a ``redis+sentinel://`` URL, or a ValueError saying what is wrong."""
    rest = url.removeprefix(SENTINEL_SCHEME)
    auth, _, location = rest.rpartition("@")
    hosts, _, path = location.partition("/")
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise ValueError(f"{url!r} names no service: redis+sentinel://host:26379[,host:26379]/SERVICE[/DB]")
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ValueError(f"{url!r}: expected /SERVICE or /SERVICE/DB after the Sentinels")
    sentinels = []
    for address in hosts.split(","):
        host, _, port = address.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{url!r}: Sentinel address {address!r} is not host:port")
        sentinels.append((host, int(port)))
    password = unquote(auth.partition(":")[2]) or None if auth else None
    return SentinelAddress(sentinels, parts[0], int(parts[1]) if len(parts) == 2 else 0, password)


def without_password(url: str) -> str:
    """The URL as a log line or an error may show it: any password replaced by ***."""
    scheme, sep, rest = url.partition("://")
    auth, at, location = rest.rpartition("@")
    if not sep or not at or ":" not in auth:
        return url
    return f"{scheme}://{auth.partition(':')[0]}:***@{location}"


def where(client: Any) -> dict[str, str]:
    """Which Redis a retry log line is about: its address and the setting that names it (never a password)."""
    pool = client.connection_pool
    if isinstance(pool, AsyncSentinelPool | SentinelConnectionPool):
        return {"redis": f"sentinel service {pool.service_name}", "setting": "WARNING_REDIS_URL"}
    kw = pool.connection_kwargs
    return {"redis": f"{kw.get('host', kw.get('path', '?'))}:{kw.get('port', '')}/{kw.get('db', 0)}",
            "setting": "WARNING_REDIS_URL"}


def _sentinel_options(options: dict[str, Any]) -> dict[str, Any]:
    """What the Sentinels themselves are asked with: the client's timeouts, not the data nodes' password."""
    return {k: v for k, v in options.items() if k.startswith("socket_")}


def connect(url: str, **options: Any) -> aioredis.Redis:
    """An asyncio client for ``url``; plain TCP connections pack with hiredis when it is installed
    (a ``rediss://`` or ``unix://`` URL picks its own connection class, as redis-py does)."""
    if url.startswith(SENTINEL_SCHEME):
        address = parse_sentinel(url)
        if HIREDIS_AVAILABLE:
            options.setdefault("connection_class", HiredisPackedSentinelConnection)
        sentinel = AsyncSentinel(address.sentinels,  # type: ignore[no-untyped-call]
                                 sentinel_kwargs=_sentinel_options(options))
        client: aioredis.Redis = sentinel.master_for(address.service, db=address.db, password=address.password,
                                                     **options)
        return client
    if HIREDIS_AVAILABLE:
        options.setdefault("connection_class", HiredisPackedConnection)
    return aioredis.Redis.from_url(url, **options)


def connect_sync(url: str, **options: Any) -> redis.Redis:
    """A synchronous client for ``url`` (commands a person runs, imports, the bench), Sentinel or not."""
    if url.startswith(SENTINEL_SCHEME):
        address = parse_sentinel(url)
        sentinel = Sentinel(address.sentinels,  # type: ignore[no-untyped-call]
                            sentinel_kwargs=_sentinel_options(options))
        client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            address.service, db=address.db, password=address.password, **options)
        return client
    return redis.Redis.from_url(url, **options)
