"""Redis with Sentinel-managed failover for the local stack: a master, one replica and a
Sentinel that promotes the replica when the master is gone (Debian's ``redis-server``, the
Sentinel as ``redis-server --sentinel``).

Used when ``WARNING_REDIS_URL`` is ``redis+sentinel://HOST:PORT/SERVICE[/DB]``: the
Sentinel listens on PORT, the master starts on PORT - 2 and the replica on PORT - 1
(``redis+sentinel://127.0.0.1:36391/warning/0``: master 36389, replica 36390), each
with its data under ``.run/redis-failover/<name>``. After a failover the roles stay
swapped, as in production; ``down`` stops all three.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

DOWN_AFTER_MS = 2000  # the master unanswered this long is down (Sentinel's default is 30 s)


@dataclass(frozen=True)
class Member:
    name: str  # "redis-a" (the first master), "redis-b" (its replica), "sentinel"
    host: str
    port: int
    home: Path

    @property
    def pidfile(self) -> Path:
        return self.home / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return self.home / f"{self.name}.log"


def is_sentinel(url: str) -> bool:
    return url.startswith("redis+sentinel://")


def members(url: str, run: Path) -> tuple[str, list[Member]]:
    """The service name and the three processes (master, replica, sentinel)."""
    parsed = urlparse(url.replace("redis+sentinel://", "redis://", 1))
    service = parsed.path.strip("/").split("/")[0]
    if not service:
        raise ValueError(f"WARNING_REDIS_URL {url!r} names no service: redis+sentinel://host:port/SERVICE/db")
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 26379
    home = run / "redis-failover"
    return service, [Member("redis-a", host, port - 2, home / "redis-a"),
                     Member("redis-b", host, port - 1, home / "redis-b"),
                     Member("sentinel", host, port, home / "sentinel")]


def started(run: Path) -> list[Member]:
    """Every failover member this run directory has started (for stop and status)."""
    home = run / "redis-failover"
    return [Member(name, "127.0.0.1", 0, home / name) for name in ("redis-a", "redis-b", "sentinel")
            if (home / name).exists()]


def server_args(member: Member, master: Member | None) -> list[str]:
    """A data node: AOF every second, no eviction; the replica follows ``master``."""
    follow = ["--replicaof", master.host, str(master.port)] if master else []
    return ["--bind", member.host, "--port", str(member.port), "--dir", str(member.home), "--daemonize", "yes",
            "--pidfile", str(member.pidfile), "--logfile", str(member.log), "--appendonly", "yes",
            "--appendfsync", "everysec", "--save", "", "--maxmemory-policy", "noeviction",
            "--repl-diskless-sync-delay", "0", *follow]  # a replica syncs at once, not 5 s later


def start_sentinel(server: str, member: Member, service: str, master: Member) -> None:
    """Sentinel rewrites its own config file (the current master, epochs): one per home."""
    member.home.mkdir(parents=True, exist_ok=True)
    config = member.home / "sentinel.conf"
    if not config.exists():
        config.write_text(f"bind {member.host}\nport {member.port}\ndir {member.home}\n"
                          f"sentinel monitor {service} {master.host} {master.port} 1\n"
                          f"sentinel down-after-milliseconds {service} {DOWN_AFTER_MS}\n"
                          f"sentinel failover-timeout {service} 10000\n"
                          f"sentinel parallel-syncs {service} 1\n")
    subprocess.run([server, str(config), "--sentinel", "--daemonize", "yes", "--pidfile", str(member.pidfile),
                    "--logfile", str(member.log)], check=True)


def current_master(sentinel: Member, service: str) -> tuple[str, int]:
    import redis

    client = redis.Redis(host=sentinel.host, port=sentinel.port, socket_timeout=2, decode_responses=True)
    try:
        host, port = client.execute_command("SENTINEL", "get-master-addr-by-name", service)
    finally:
        client.close()
    return str(host), int(port)


def ready(service: str, group: list[Member]) -> bool:
    """The Sentinel names a master that answers, and that master has its replica in sync."""
    import redis

    host, port = current_master(group[2], service)
    client = redis.Redis(host=host, port=port, socket_timeout=2, decode_responses=True)
    try:
        info = client.info("replication")
    finally:
        client.close()
    return info.get("role") == "master" and int(info.get("connected_slaves", 0)) >= 1 and all(
        v.get("state") == "online" for k, v in info.items() if k.startswith("slave") and isinstance(v, dict))


def member_at(group: list[Member], port: int, fail: Callable[[str], Exception]) -> Member:
    for member in group[:2]:
        if member.port == port:
            return member
    raise fail(f"the Sentinel's master is on port {port}, which this stack did not start")
