"""The local stack: Apache Kafka (KRaft: one broker+controller, or a cluster of three) and
Redis, as processes.

Data, logs and pid files live under ``.run/``. ``up`` is idempotent: a service that
already answers on its port is reused. Readiness is a real request (Kafka metadata,
Redis PING), never a sleep. Addresses come from ``WARNING_KAFKA_BOOTSTRAP`` and
``WARNING_REDIS_URL``; the defaults use ports that nothing common listens on.

Usage: python deploy/local/stack.py up|down [kafka|redis ...]|running|status|ready|restart-redis|browser|tools
       python deploy/local/stack.py up --kafka-nodes 3      (or WARNING_KAFKA_NODES=3; see kraft.py)
       python deploy/local/stack.py kill-kafka|start-kafka NODE_ID|leader|follower   (a cluster node: kill -9, start)
       python deploy/local/stack.py kill-redis-master   (WARNING_REDIS_URL=redis+sentinel://… or
                                                          redis+cluster://…: see sentinel.py, redis_cluster.py)

``running`` prints the services this stack runs (a live pid file), one a line: whoever
starts the stack because nothing answered stops afterwards only what was not running
before (``down`` with those names), so a half-running stack someone else started stays.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its sibling modules, also when loaded by path
import debian
import kraft
import redis_cluster
import sentinel

ROOT = Path(__file__).resolve().parents[2]
RUN = Path(os.environ.get("WARNING_RUN_DIR", ROOT / ".run"))
HERE = Path(__file__).resolve().parent
KAFKA_BOOTSTRAP = os.environ.get("WARNING_KAFKA_BOOTSTRAP", "127.0.0.1:39092")
REDIS_URL = os.environ.get("WARNING_REDIS_URL", "redis://127.0.0.1:36379/0")
READY_TIMEOUT_S = 90.0


SERVICES = {"kafka": ("Kafka", RUN / "kafka" / "kafka.pid"), "redis": ("Redis", RUN / "redis" / "redis.pid")}


class StackError(RuntimeError):
    """A service could not be installed or started; the message says what to do."""


def _listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _pid_alive(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    return pid


def _wait(what: str, check: object, log: Path | None) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception as exc:
            last = exc
        time.sleep(0.2)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise StackError(f"{what} did not become ready in {READY_TIMEOUT_S:.0f}s: {last}\n{tail}")


# --- Kafka (deploy/local/kraft.py) -----------------------------------------------------

def _kafka_libs() -> Path:
    """Copy the Kafka jars from Maven Central (cached in ~/.m2) into .run/kafka/libs."""
    libs = RUN / "kafka" / "libs"
    marker = libs / ".complete"
    pom = HERE / "pom.xml"
    if marker.exists() and marker.read_text() == pom.read_text():
        return libs
    if shutil.which("mvn") is None or shutil.which("java") is None:
        raise StackError("Kafka needs Java 17+ and Maven (apt-get install openjdk-17-jre-headless maven)")
    shutil.rmtree(libs, ignore_errors=True)
    libs.mkdir(parents=True)
    cmd = ["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
           f"-DoutputDirectory={libs}"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"fetching Kafka from Maven Central failed:\n{result.stdout}{result.stderr}")
    marker.write_text(pom.read_text())
    return libs


def _kafka_nodes(count: int | None) -> list[kraft.KafkaNode]:
    try:
        return kraft.nodes(KAFKA_BOOTSTRAP, RUN, count or (int(os.environ["WARNING_KAFKA_NODES"])
                                                          if os.environ.get("WARNING_KAFKA_NODES") else None))
    except ValueError as exc:
        raise StackError(str(exc)) from exc


def _bootstrap(cluster: list[kraft.KafkaNode]) -> str:
    return ",".join(f"{n.host}:{n.port}" for n in cluster)


def kafka_up(count: int | None = None) -> str:
    cluster = _kafka_nodes(count)
    bootstrap = _bootstrap(cluster)
    check = functools.partial(kraft.ready, bootstrap, len(cluster))
    if all(_pid_alive(n.pidfile) for n in cluster):
        _wait("Kafka", check, cluster[0].log)
        return f"Kafka already running on {bootstrap}"
    libs = _kafka_libs()
    command = kraft.java(libs, HERE / "kafka-log4j2.properties", len(cluster))
    template = (HERE / "kafka-server.properties").read_text()
    started = []
    for node in cluster:
        if _pid_alive(node.pidfile):
            continue
        for port in (node.port, node.controller_port):
            if _listening(node.host, port):
                raise StackError(f"port {port} is taken by another process; set WARNING_KAFKA_BOOTSTRAP "
                                 "to free host:port addresses (or point it at your own Kafka and skip `make up`)")
        started.append(f"{node.node_id}: pid {kraft.start(node, cluster, command, template, StackError)}")
    _wait("Kafka", check, cluster[-1].log)
    logs = cluster[0].log if len(cluster) == 1 else cluster[0].home.parent
    return f"Kafka 4.1 started on {bootstrap} ({len(cluster)} node(s), {', '.join(started)}; logs {logs})"


def kafka_node(action: str, node_id: str) -> None:
    """kill (-9) or start one node of the running cluster (the chaos bench's broker faults)."""
    nodes = {str(n.node_id): n for n in kraft.cluster_nodes(RUN)}
    if node_id in ("leader", "follower"):  # the metadata quorum's leader, or a node that does not lead it
        leader = str(kraft.quorum_leader(_bootstrap(list(nodes.values()))))
        node_id = leader if node_id == "leader" else min(n for n in nodes if n != leader)
    if node_id not in nodes:
        raise StackError(f"no cluster node {node_id} under {RUN / 'kafka-cluster'} (nodes: {sorted(nodes)})")
    node = nodes[node_id]
    if action == "kill":
        if pid := _pid_alive(node.pidfile):
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while _pid_alive(node.pidfile) and time.monotonic() < deadline:  # gone, its ports free
                time.sleep(0.05)
        say(node_id)
        return
    cluster = list(nodes.values())
    kraft.start(node, cluster, kraft.java(_kafka_libs(), HERE / "kafka-log4j2.properties", len(cluster)),
                (HERE / "kafka-server.properties").read_text(), StackError)
    _wait(node.label, functools.partial(kraft.ready, _bootstrap(cluster), len(cluster)), node.log)
    say(node_id)


# --- Redis -----------------------------------------------------------------------------

def _redis_server() -> str:
    return debian.redis_server(StackError)


def tools() -> None:
    debian.tools(StackError)


def browser() -> None:
    debian.browser(StackError)


def _redis_ready() -> bool:
    import redis

    if sentinel.is_sentinel(REDIS_URL):
        service, group = sentinel.members(REDIS_URL, RUN)
        return sentinel.ready(service, group)
    if redis_cluster.is_cluster(REDIS_URL):
        return redis_cluster.ready(redis_cluster.nodes(REDIS_URL, RUN))
    return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping())


def failover_up() -> str:
    """Master, replica and Sentinel (deploy/local/sentinel.py), each reused if it runs."""
    service, group = sentinel.members(REDIS_URL, RUN)
    server = _redis_server()
    master, replica, watcher = group
    for member, follows in ((master, None), (replica, master)):
        if not _pid_alive(member.pidfile):
            if _listening(member.host, member.port):
                raise StackError(f"port {member.port} is taken by another process; set WARNING_REDIS_URL's port "
                                 "(the Sentinel's; its master and replica use the two below it)")
            member.home.mkdir(parents=True, exist_ok=True)
            subprocess.run([server, *sentinel.server_args(member, follows)], check=True)
    if not _pid_alive(watcher.pidfile):
        sentinel.start_sentinel(server, watcher, service, master)
    _wait("Redis with Sentinel", functools.partial(sentinel.ready, service, group), watcher.log)
    host, port = sentinel.current_master(watcher, service)
    return (f"Redis with Sentinel on {watcher.host}:{watcher.port} (service {service}: master {host}:{port}, "
            f"one replica; data under {master.home.parent})")


def cluster_up() -> str:
    """Six cluster nodes (deploy/local/redis_cluster.py), each reused if it runs; joined
    into 3 masters + 3 replicas the first time."""
    group = redis_cluster.nodes(REDIS_URL, RUN)
    server = _redis_server()
    for node in group:
        if not _pid_alive(node.pidfile):
            if _listening(node.host, node.port):
                raise StackError(f"port {node.port} is taken by another process; set WARNING_REDIS_URL's port "
                                 f"(the cluster uses it and the {redis_cluster.NODES - 1} above it)")
            node.home.mkdir(parents=True, exist_ok=True)
            subprocess.run([server, *redis_cluster.server_args(node)], check=True)
    for node in group:
        _wait(f"Redis Cluster node {node.port}", functools.partial(redis_cluster.answers, node), node.log)
    if not redis_cluster.formed(group):
        redis_cluster.create(group)
    _wait("Redis Cluster", functools.partial(redis_cluster.ready, group), group[0].log)
    return (f"Redis Cluster on {group[0].host}:{group[0].port}-{group[-1].port} (3 masters + 3 replicas; "
            f"data under {group[0].home.parent})")


def kill_redis_master() -> None:
    """kill -9 of a master (the chaos bench's master kill): the Sentinel's, or a cluster's."""
    if redis_cluster.is_cluster(REDIS_URL):
        node = redis_cluster.a_master(redis_cluster.nodes(REDIS_URL, RUN))
        if pid := _pid_alive(node.pidfile):
            os.kill(pid, signal.SIGKILL)
        say(f"{node.name}:{node.port}")
        return
    service, group = sentinel.members(REDIS_URL, RUN)
    _, port = sentinel.current_master(group[2], service)
    member = sentinel.member_at(group, port, StackError)
    if pid := _pid_alive(member.pidfile):
        os.kill(pid, signal.SIGKILL)
    say(f"{member.name}:{port}")


def redis_up() -> str:
    if sentinel.is_sentinel(REDIS_URL):
        return failover_up()
    if redis_cluster.is_cluster(REDIS_URL):
        return cluster_up()
    url = urlparse(REDIS_URL)
    host, port = url.hostname or "127.0.0.1", url.port or 6379
    home = RUN / "redis"
    pidfile = home / "redis.pid"
    if _pid_alive(pidfile):
        _wait("Redis", _redis_ready, home / "redis.log")
        return f"Redis already running on {host}:{port}"
    if _listening(host, port):
        raise StackError(f"port {port} is taken by another process; set WARNING_REDIS_URL to a "
                         "free port (or point it at your own Redis and skip `make up`)")
    server = _redis_server()
    home.mkdir(parents=True, exist_ok=True)
    log = home / "redis.log"
    subprocess.run([server, "--bind", host, "--port", str(port), "--dir", str(home),
                    "--daemonize", "yes", "--pidfile", str(pidfile), "--logfile", str(log),
                    "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
                    "--maxmemory-policy", "noeviction"], check=True)
    _wait("Redis", _redis_ready, log)
    version = subprocess.run([server, "--version"], capture_output=True, text=True).stdout.split()[2]
    return f"Redis {version.removeprefix('v=')} started on {host}:{port} (AOF everysec, dir {home})"


# --- commands --------------------------------------------------------------------------

def say(message: str) -> None:
    """Print, but never let a closed stdout (Ctrl-C killed the pager/tee) stop a shutdown."""
    with contextlib.suppress(OSError):  # BrokenPipeError included
        print(message, flush=True)


def _stop(name: str, pidfile: Path) -> str:
    pid = _pid_alive(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return f"{name} not running"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _pid_alive(pidfile):
        time.sleep(0.1)
    if _pid_alive(pidfile):
        os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return f"{name} stopped (pid {pid})"


def _pidfiles(service: str, every: bool = False) -> list[tuple[str, Path]]:
    """A service's processes. Kafka's are the nodes WARNING_KAFKA_BOOTSTRAP names (one, or
    a cluster's three); ``every`` adds any other Kafka node started from this directory."""
    if service == "redis":
        if sentinel.is_sentinel(REDIS_URL):
            named = [(m.name, m.pidfile) for m in sentinel.members(REDIS_URL, RUN)[1]]
        elif redis_cluster.is_cluster(REDIS_URL):
            named = [(n.name, n.pidfile) for n in redis_cluster.nodes(REDIS_URL, RUN)]
        else:
            named = [SERVICES["redis"]]
        others = [SERVICES["redis"], *((m.name, m.pidfile) for m in sentinel.started(RUN)),
                  *((n.name, n.pidfile) for n in redis_cluster.started(RUN))] if every else []
        return named + [p for p in others if p not in named]
    if service != "kafka":
        return [SERVICES[service]]
    configured = _kafka_nodes(None)
    named = [SERVICES["kafka"]] if len(configured) == 1 else [(n.label, n.pidfile) for n in configured]
    others = [SERVICES["kafka"], *((n.label, n.pidfile) for n in kraft.cluster_nodes(RUN))] if every else []
    return named + [p for p in others if p not in named]


def up(kafka_nodes: int | None = None) -> None:
    RUN.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    redis_was_running = any(_pid_alive(pidfile) for _, pidfile in _pidfiles("redis"))
    say(redis_up())
    try:
        say(kafka_up(kafka_nodes))
    except BaseException:
        if not redis_was_running:  # no half-started stack left holding its port for the next try
            down("redis")
        raise
    say(f"stack ready in {time.monotonic() - started:.1f}s")


def down(*services: str) -> None:
    """Stop these services (all by default); Kafka first, so it never waits on a missing Redis."""
    for service in [s for s in SERVICES if s in services or not services]:
        for name, pidfile in _pidfiles(service, every=not services):
            if pidfile.exists() or name in ("Kafka", "Redis"):
                say(_stop(name, pidfile))


def running() -> None:
    for service in SERVICES:
        if any(_pid_alive(pidfile) for _, pidfile in _pidfiles(service)):
            print(service)


def status() -> None:
    for service in SERVICES:
        for name, pidfile in _pidfiles(service, every=True):
            pid = _pid_alive(pidfile)
            print(f"{name}: {'running, pid ' + str(pid) if pid else 'stopped'}")


def ready() -> None:
    """Exit 0 when Kafka (every node the bootstrap names) and Redis answer (whoever runs them)."""
    brokers = len(KAFKA_BOOTSTRAP.split(","))
    for name, check in (("Redis", _redis_ready), ("Kafka", functools.partial(kraft.ready, KAFKA_BOOTSTRAP, brokers))):
        try:
            ok = check()
        except Exception as exc:
            raise StackError(f"{name} not reachable: {exc}") from exc
        if not ok:
            raise StackError(f"{name} not reachable")
    print("ready")


def restart_redis() -> None:
    """Stop Redis and start it again from its AOF (tests: nothing queued may be lost); with
    Sentinel, the current master (its replica may take over meanwhile)."""
    if sentinel.is_sentinel(REDIS_URL):
        service, group = sentinel.members(REDIS_URL, RUN)
        master = sentinel.member_at(group, sentinel.current_master(group[2], service)[1], StackError)
        say(_stop(master.name, master.pidfile))
    elif redis_cluster.is_cluster(REDIS_URL):
        for node in redis_cluster.nodes(REDIS_URL, RUN):
            say(_stop(node.name, node.pidfile))
    else:
        say(_stop(*SERVICES["redis"]))
    say(redis_up())


def main(argv: list[str]) -> int:
    commands: dict[str, Callable[..., None]] = {
        "up": up, "down": down, "running": running, "status": status, "ready": ready, "restart-redis": restart_redis,
        "kill-redis-master": kill_redis_master, "browser": browser, "tools": tools}
    command, args = (argv[1], argv[2:]) if len(argv) > 1 else ("", [])
    try:
        if command in ("kill-kafka", "start-kafka") and len(args) == 1:
            kafka_node(command.removesuffix("-kafka"), args[0])
            return 0
        if command == "up" and len(args) == 2 and args[0] == "--kafka-nodes" and args[1].isdigit():
            up(int(args[1]))
            return 0
        if command not in commands or (args and command != "down") or not set(args) <= set(SERVICES):
            print(__doc__, file=sys.stderr)
            return 2
        commands[command](*args)
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
