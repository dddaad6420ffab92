"""The Redis clients every pipeline process uses: commands packed by hiredis, and Redis
reached directly (``redis://``) or through Sentinel (``redis+sentinel://``).

redis-py packs a command in C (hiredis) on its synchronous connections, but its asyncio
connection packs every argument in Python. That was 16 % of a delivery consumer's CPU in
the fan-out drain (py-spy), where a status change of 500 deliveries is one script call of
2,000 arguments; 2 % with hiredis. hiredis packs the arguments as they are given (see
:func:`pack`), redis-py's own hiredis serializer what it does not take, so the bytes on the
wire and the errors are redis-py's (tests check both).

``redis+sentinel://[:password@]host:port[,host:port…]/SERVICE[/DB]`` names the Sentinels
and the service they watch: the client asks them for the master, and again after a
failover (a single-shard deployment's high availability).

``redis+cluster://[:password@]host:port[,host:port…]`` names some nodes of a Redis
Cluster: the client learns the slot map from the first that answers and follows MOVED
and failovers. Every script and MULTI of the pipeline touches one hash slot
(tests/unit/test_key_slots.py). A script staged in a cluster pipeline runs as EVAL (its
body, ≤ 1.5 KB): the pipeline goes to several masters, and a promoted replica has no
scripts cached, so a staged EVALSHA could fail with NOSCRIPT mid-batch.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote

import hiredis
import redis
import redis.asyncio as aioredis
from redis import exceptions
from redis._parsers.hiredis import NOT_ENOUGH_DATA, _AsyncHiredisParser
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import ClusterPipeline as AsyncClusterPipeline
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
from redis.asyncio.sentinel import SentinelManagedConnection
from redis.cluster import ClusterNode
from redis.commands.core import AsyncScript
from redis.connection import HiredisRespSerializer
from redis.sentinel import Sentinel, SentinelConnectionPool
from redis.utils import HIREDIS_AVAILABLE

SENTINEL_SCHEME = "redis+sentinel://"
CLUSTER_SCHEME = "redis+cluster://"

# What a Redis outage raises — a restart, a failover, a cluster slot without a master for
# the seconds until its replica is promoted: a loop retries it, never dies of it.
REDIS_DOWN: tuple[type[Exception], ...] = (
    exceptions.ConnectionError, exceptions.TimeoutError, exceptions.ClusterError, exceptions.TryAgainError,
    exceptions.SlotNotCoveredError, exceptions.ReadOnlyError)
REDIS_OR_SOCKET_DOWN: tuple[type[Exception], ...] = (*REDIS_DOWN, OSError)  # where a socket error can surface too


class ClosedUnderWrite(aioredis.Connection):
    """A connection closed while a command was being written (another task disconnected it,
    or the peer reset it) surfaces in redis-py 8.1 as AttributeError / TypeError on the
    writer it no longer has — not a ConnectionError, so neither redis-py's retries nor the
    pipeline's outage loops saw it, and a Twilio status callback failed with a 500 on the
    local Redis Cluster (redis/redis-py#4287, the fix proposed upstream in #4217). Under
    uvloop (the default event loop) the same write on a transport the loop has closed raises
    RuntimeError ("... the handler is closed"), where asyncio's own loop drops the bytes: a
    push consumer died of it when its Redis Cluster master was killed (`warning bench chaos
    --cluster`, 2026-12-03). Raised here as what it is; the write is then retried on a fresh
    connection. redis-py 8.2 checks the transport itself (before the write, and after a
    TypeError / AttributeError), so there only uvloop's RuntimeError mid-write reaches this."""

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        try:
            await super().send_packed_command(command, check_health)
        except (AttributeError, TypeError, RuntimeError) as exc:
            closed = "handler is closed" in str(exc) if isinstance(exc, RuntimeError) else "NoneType" in str(exc)
            if not closed:
                raise  # not the closed writer: a real defect, not an outage
            raise exceptions.ConnectionError(f"connection to {self.host}:{self.port} closed under a write: "
                                             f"{exc}") from exc


class BufferedRepliesFirst(aioredis.Connection):
    """A reply hiredis already holds is taken without arming the read timeout.

    redis-py reads every reply of a pipeline under its own ``socket_timeout`` context
    (asyncio.timeout: a timer handle scheduled and cancelled per reply); that was ~4.5 % of
    the worker's profile samples in a burst, where a fan-out batch is one pipeline of hundreds of
    replies and all but the first are already in hiredis's buffer when asked for. Only a
    read that has to wait on the socket needs the timeout, and it still gets it (the
    parent's path). What the parser would do with a buffered reply is done here the same
    way: a RESP3 push notification goes to its handler, a connection error disconnects."""

    async def read_response(self, disable_decoding: bool = False, timeout: float | None = None, *,
                            disconnect_on_error: bool = True, push_request: bool | None = False) -> Any:
        parser = self._parser
        if (timeout is not None or push_request or not isinstance(parser, _AsyncHiredisParser)
                or not parser._connected or parser._reader is None):
            return await super().read_response(disable_decoding, timeout, disconnect_on_error=disconnect_on_error,
                                               push_request=push_request)
        reply = parser._reader.gets(False) if disable_decoding else parser._reader.gets()
        if reply is NOT_ENOUGH_DATA:  # the reply is still on its way: read it under the timeout
            return await super().read_response(disable_decoding, timeout, disconnect_on_error=disconnect_on_error,
                                               push_request=push_request)
        push = parser._hiredis_PushNotificationType
        if push is not None and isinstance(reply, push):
            await parser.handle_push_response(reply)
            return await self.read_response(disable_decoding, disconnect_on_error=disconnect_on_error)
        first = reply[0] if isinstance(reply, list) and reply else reply
        failed = first if isinstance(first, exceptions.ConnectionError) else None
        if failed is not None:
            if disconnect_on_error:
                await self.disconnect(nowait=True)
            raise failed
        if self.health_check_interval:
            self.next_health_check = asyncio.get_running_loop().time() + self.health_check_interval
        if isinstance(reply, exceptions.ResponseError):
            raise reply from None
        return reply


_SERIALIZER = HiredisRespSerializer()


def pack(*args: Any) -> list[bytes]:
    """One command in RESP, packed by hiredis from the arguments as they are.

    redis-py's serializer copies every argument through a generator first (to turn a
    bytearray or memoryview into bytes): 17 µs for a 100-argument script call where hiredis
    alone takes 7, and ~10 % of the worker's samples in a burst went to packing. A command
    name with a space in it ("SCRIPT LOAD") or an argument hiredis does not take goes
    through the serializer, which splits the one and converts the other (or raises
    DataError)."""
    first = args[0]
    if isinstance(first, str) and " " not in first:
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            pass
    packed: list[bytes] = _SERIALIZER.pack(*args)
    return packed


class HiredisPackedConnection(BufferedRepliesFirst, ClosedUnderWrite):
    def pack_command(self, *args: Any) -> list[bytes]:
        return pack(*args)


class HiredisPackedSentinelConnection(SentinelManagedConnection, BufferedRepliesFirst, ClosedUnderWrite):
    # Sentinel's read_response comes first: it turns a demoted master's READONLY into a reconnect.
    def pack_command(self, *args: Any) -> list[bytes]:
        return pack(*args)


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


@dataclass(frozen=True)
class ClusterAddress:
    nodes: list[tuple[str, int]]
    password: str | None = None


def parse_cluster(url: str) -> ClusterAddress:
    """The nodes of a ``redis+cluster://`` URL, or a ValueError saying what is wrong
    (a cluster has one database: a /DB other than 0 is refused)."""
    rest = url.removeprefix(CLUSTER_SCHEME)
    auth, _, location = rest.rpartition("@")
    hosts, _, path = location.partition("/")
    if path.strip("/") not in ("", "0"):
        raise ValueError(f"{url!r}: a Redis Cluster has database 0 only, got /{path.strip('/')}")
    nodes = []
    for address in hosts.split(","):
        host, _, port = address.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{url!r}: node address {address!r} is not host:port "
                             "(redis+cluster://host:port[,host:port…])")
        nodes.append((host, int(port)))
    password = unquote(auth.partition(":")[2]) or None if auth else None
    return ClusterAddress(nodes, password)


def is_cluster(client: Any) -> bool:
    return isinstance(client, aioredis.RedisCluster | redis.RedisCluster)


def without_password(url: str) -> str:
    """The URL as a log line or an error may show it: any password replaced by ***."""
    scheme, sep, rest = url.partition("://")
    auth, at, location = rest.rpartition("@")
    if not sep or not at or ":" not in auth:
        return url
    return f"{scheme}://{auth.partition(':')[0]}:***@{location}"


def where(client: Any) -> dict[str, str]:
    """Which Redis a retry log line is about: its address and the setting that names it (never a password)."""
    if is_cluster(client):
        return {"redis": "cluster " + ",".join(n.name for n in client.get_primaries()), "setting": "WARNING_REDIS_URL"}
    pool = client.connection_pool
    if isinstance(pool, AsyncSentinelPool | SentinelConnectionPool):
        return {"redis": f"sentinel service {pool.service_name}", "setting": "WARNING_REDIS_URL"}
    kw = pool.connection_kwargs
    return {"redis": f"{kw.get('host', kw.get('path', '?'))}:{kw.get('port', '')}/{kw.get('db', 0)}",
            "setting": "WARNING_REDIS_URL"}


def _sentinel_options(options: dict[str, Any]) -> dict[str, Any]:
    """What the Sentinels themselves are asked with: the client's timeouts, not the data nodes' password."""
    return {k: v for k, v in options.items() if k.startswith("socket_")}


class PipelinedScript(AsyncScript):
    """A script that, staged in a cluster pipeline, is sent as EVAL (see the module's note)."""

    async def __call__(self, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        if isinstance(client, AsyncClusterPipeline):
            keys, args = list(keys or []), list(args or [])
            # staged, not awaited: awaiting a cluster pipeline (re)initializes it, dropping its stack
            return client.eval(cast(str, self.script), len(keys), *keys, *args)
        return await super().__call__(keys, args, client)


class WarningCluster(aioredis.RedisCluster):
    """redis-py's asyncio cluster client, its scripts safe in pipelines and its commands
    packed by hiredis as on one Redis."""

    def register_script(self, script: Any) -> AsyncScript:  # type: ignore[override]
        return PipelinedScript(self, script)

    async def initialize(self, *args: Any, **kwargs: Any) -> WarningCluster:
        """A cluster none of whose nodes answers — every node restarting, or loading its AOF —
        raises redis-py's RedisClusterException, the same class as a command it cannot route
        (a defect). The first is an outage: a ConnectionError here, waited out by the outage
        loops as on one Redis; a push consumer died of it when the whole local cluster was
        restarted under its drain (``make test-cluster``, 2026-12-04)."""
        try:
            await super().initialize(*args, **kwargs)
        except exceptions.RedisClusterException as exc:
            if "cannot be connected" not in str(exc):
                raise
            raise exceptions.ConnectionError(f"no Redis Cluster node answered: {exc}") from exc
        return self

    def pack_with_hiredis(self) -> None:
        # redis-py's asyncio cluster takes no connection class: it is set where every node,
        # the known and those found later, takes it from.
        self.connection_kwargs["connection_class"] = HiredisPackedConnection
        self.nodes_manager.connection_kwargs["connection_class"] = HiredisPackedConnection
        for node in (*self.startup_nodes, *self.nodes_manager.startup_nodes.values()):
            node.connection_class = HiredisPackedConnection


def connect_cluster(url: str, **options: Any) -> WarningCluster:
    address = parse_cluster(url)
    client = WarningCluster(startup_nodes=[AsyncClusterNode(h, p) for h, p in address.nodes],
                            password=address.password, **options)
    if HIREDIS_AVAILABLE:
        client.pack_with_hiredis()
    return client


def connect(url: str, **options: Any) -> aioredis.Redis:
    """An asyncio client for ``url``; plain TCP connections pack with hiredis when it is installed
    (a ``rediss://`` or ``unix://`` URL picks its own connection class, as redis-py does).
    A cluster client is returned as the ``Redis`` it stands in for (the same commands)."""
    if url.startswith(CLUSTER_SCHEME):
        cluster: Any = connect_cluster(url, **options)
        return cast(aioredis.Redis, cluster)
    if url.startswith(SENTINEL_SCHEME):
        address = parse_sentinel(url)
        if HIREDIS_AVAILABLE:
            options.setdefault("connection_class", HiredisPackedSentinelConnection)
        sentinel = AsyncSentinel(address.sentinels,  # type: ignore[no-untyped-call]
                                 sentinel_kwargs=_sentinel_options(options))
        client: aioredis.Redis = sentinel.master_for(address.service, db=address.db, password=address.password,
                                                     **options)
        return client
    if HIREDIS_AVAILABLE and url.startswith("redis://"):
        # only plain TCP: redis-py 8.1 let a rediss:// or unix:// URL override a class given
        # here, 8.2 does not — it would have dropped TLS
        options.setdefault("connection_class", HiredisPackedConnection)
    return aioredis.Redis.from_url(url, **options)


def _sync_cluster(address: ClusterAddress, options: dict[str, Any]) -> redis.RedisCluster:
    nodes = [ClusterNode(h, p) for h, p in address.nodes]  # type: ignore[no-untyped-call]
    return redis.RedisCluster(startup_nodes=nodes, password=address.password, **options)


def connect_sync(url: str, **options: Any) -> redis.Redis:
    """A synchronous client for ``url`` (commands a person runs, imports, the bench): one
    Redis, Sentinel or a cluster (which raises RedisClusterException when no node answers)."""
    if url.startswith(CLUSTER_SCHEME):
        return cast(redis.Redis, _sync_cluster(parse_cluster(url), options))
    if url.startswith(SENTINEL_SCHEME):
        address = parse_sentinel(url)
        sentinel = Sentinel(address.sentinels,  # type: ignore[no-untyped-call]
                            sentinel_kwargs=_sentinel_options(options))
        client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            address.service, db=address.db, password=address.password, **options)
        return client
    return redis.Redis.from_url(url, **options)
