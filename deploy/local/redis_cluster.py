"""A Redis Cluster of 3 masters and 3 replicas for the local stack, from Debian's
``redis-server`` (``--cluster-enabled yes``) joined by ``redis-cli --cluster create``.

Used when ``WARNING_REDIS_URL`` is ``redis+cluster://HOST:PORT[,…]``: the six nodes listen
on PORT … PORT+5 of the first address (``redis+cluster://127.0.0.1:21001``: 21001–21006,
their cluster buses 10000 above; both below Linux's ephemeral range, which starts at
32768, so no client connection's source port can take one while a node restarts;
``redis-cli`` makes the first three masters, each followed by one of the others), each
with its data and ``nodes.conf`` under ``.run/redis-cluster/<port>``. A killed master's
replica takes over after NODE_TIMEOUT_MS; restarted, the old master rejoins as a replica.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

NODES = 6  # 3 masters + 3 replicas
NODE_TIMEOUT_MS = 2000  # a master unanswered this long is failed over (Redis' default is 15 s)


@dataclass(frozen=True)
class Node:
    host: str
    port: int
    home: Path

    @property
    def name(self) -> str:
        return f"redis-{self.port}"

    @property
    def pidfile(self) -> Path:
        return self.home / "redis.pid"

    @property
    def log(self) -> Path:
        return self.home / "redis.log"


def is_cluster(url: str) -> bool:
    return url.startswith("redis+cluster://")


def nodes(url: str, run: Path) -> list[Node]:
    first = url.removeprefix("redis+cluster://").rpartition("@")[2].split(",")[0].split("/")[0]
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"WARNING_REDIS_URL {url!r}: expected redis+cluster://host:port[,host:port…]")
    return [Node(host, int(port) + i, run / "redis-cluster" / str(int(port) + i)) for i in range(NODES)]


def started(run: Path) -> list[Node]:
    """Every cluster node this run directory has started (for stop and status)."""
    home = run / "redis-cluster"
    return [Node("127.0.0.1", int(p.name), p) for p in sorted(home.iterdir()) if p.name.isdigit()] \
        if home.exists() else []


def server_args(node: Node) -> list[str]:
    """A cluster node: AOF every second, no eviction, its cluster state in its own home."""
    return ["--bind", node.host, "--port", str(node.port), "--dir", str(node.home), "--daemonize", "yes",
            "--pidfile", str(node.pidfile), "--logfile", str(node.log), "--appendonly", "yes",
            "--appendfsync", "everysec", "--save", "", "--maxmemory-policy", "noeviction",
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
            "--repl-diskless-sync-delay", "0"]  # a replica syncs at once, not 5 s later


def _ask(group: list[Node], *command: str, node: Node | None = None) -> str:
    """A CLUSTER command's reply from ``node``, or from the first node of ``group`` that answers."""
    import redis

    error: Exception | None = None
    for member in [node] if node else group:
        client = redis.Redis(host=member.host, port=member.port, socket_timeout=2, decode_responses=True)
        try:
            return str(client.execute_command(*command))
        except redis.ConnectionError as exc:
            error = exc
        finally:
            client.close()
    raise error or RuntimeError("no node")


def _info(group: list[Node], node: Node) -> dict[str, str]:
    raw = _ask(group, "CLUSTER", "INFO", node=node)
    return dict(line.split(":", 1) for line in raw.strip().splitlines() if ":" in line)


def _port(fields: list[str]) -> int:
    """A CLUSTER NODES line's port (its address is ``host:port@bus``)."""
    return int(fields[1].split("@")[0].rpartition(":")[2])


def _nodes_lines(group: list[Node]) -> list[list[str]]:
    return [line.split() for line in _ask(group, "CLUSTER", "NODES").strip().splitlines()]


def _masters(lines: list[list[str]]) -> list[list[str]]:
    """The lines of the masters serving slots (the slot ranges follow the 8 fixed fields)."""
    return [f for f in lines if "master" in f[2] and "fail" not in f[2] and len(f) > 8]


def answers(node: Node) -> bool:
    """The node serves commands: listening is not enough, a restarted node replies LOADING
    until its AOF is read back (seconds after a bench's million-job fan-out)."""
    import redis

    client = redis.Redis(host=node.host, port=node.port, socket_timeout=2)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):  # BusyLoadingError is a ConnectionError
        return False
    finally:
        client.close()


def formed(group: list[Node]) -> bool:
    """The nodes already know each other (a restart of a formed cluster needs no create)."""
    return int(_info(group, group[0]).get("cluster_known_nodes", "1")) >= NODES


def create(group: list[Node]) -> None:
    subprocess.run(["redis-cli", "--cluster", "create", *(f"{n.host}:{n.port}" for n in group),
                    "--cluster-replicas", "1", "--cluster-yes"], check=True, capture_output=True, text=True)


def ready(group: list[Node]) -> bool:
    """Every node sees all slots served, and three masters each have a replica online."""
    if not all(_info(group, n).get("cluster_state") == "ok" for n in group):
        return False
    lines = _nodes_lines(group)
    followed = {f[3] for f in lines if "slave" in f[2] and "fail" not in f[2] and f[7] == "connected"}
    masters = _masters(lines)
    return len(masters) == NODES // 2 and {f[0] for f in masters} <= followed and all(
        _replica_online(next(n for n in group if n.port == _port(f))) for f in masters)


def _replica_online(master: Node) -> bool:
    """The master's replica has synced (WAIT counts it), not only joined the cluster bus."""
    import redis

    client = redis.Redis(host=master.host, port=master.port, socket_timeout=2, decode_responses=True)
    try:
        info = client.info("replication")
    finally:
        client.close()
    return int(info.get("connected_slaves", 0)) >= 1 and all(
        v.get("state") == "online" for k, v in info.items() if k.startswith("slave") and isinstance(v, dict))


def a_master(group: list[Node]) -> Node:
    """The master serving slot 0 (the one the chaos bench kills)."""
    serving = next(f for f in _masters(_nodes_lines(group)) if any(r.split("-")[0] == "0" for r in f[8:]))
    return next(n for n in group if n.port == _port(serving))
