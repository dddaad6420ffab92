"""Kafka nodes for the local stack: one KRaft process that is broker and controller, or a
cluster of three (voters 1-3) on this machine, each with a small heap.

The nodes' addresses come from ``WARNING_KAFKA_BOOTSTRAP``: a list of host:port names
one node each; a single address and ``--kafka-nodes N`` put the others two ports apart
(each node's controller listens on its port + 1). A single node keeps its data in
``.run/kafka``; a cluster in ``.run/kafka-cluster/node-<id>`` with one cluster id.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KafkaNode:
    node_id: int
    host: str
    port: int
    home: Path

    @property
    def controller_port(self) -> int:
        return self.port + 1

    @property
    def pidfile(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def log(self) -> Path:
        return self.home / "kafka.log"

    @property
    def label(self) -> str:
        return f"Kafka node {self.node_id}" if self.home.parent.name == "kafka-cluster" else "Kafka"


def cluster_id() -> str:
    """A cluster id as StorageTool wants it: a uuid in url-safe base64, 22 chars, unpadded.

    Never starting with '-': the tool's argument parser takes such an id for an option and
    the format fails (1 fresh stack in 64); Kafka's own Uuid.randomUuid avoids it the same way."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


def nodes(bootstrap: str, run: Path, count: int | None = None) -> list[KafkaNode]:
    """The nodes named by the bootstrap list (or ``count`` nodes from its one address)."""
    addresses = [a.strip() for a in bootstrap.split(",") if a.strip()]
    if count is not None and len(addresses) > 1 and count != len(addresses):
        raise ValueError(f"--kafka-nodes {count} but WARNING_KAFKA_BOOTSTRAP names {len(addresses)} nodes")
    if len(addresses) == 1 and (count or 1) > 1:
        host, _, port = addresses[0].rpartition(":")
        addresses = [f"{host}:{int(port) + 2 * i}" for i in range(count or 1)]
    if len(addresses) not in (1, 3):
        raise ValueError(f"a local Kafka is 1 or 3 nodes, not {len(addresses)}")
    found = []
    for i, address in enumerate(addresses, start=1):
        host, _, port = address.rpartition(":")
        home = run / "kafka" if len(addresses) == 1 else run / "kafka-cluster" / f"node-{i}"
        found.append(KafkaNode(i, host or "127.0.0.1", int(port), home))
    return found


def cluster_nodes(run: Path) -> list[KafkaNode]:
    """Every cluster node this run directory has started (for stop and status, whatever the setting)."""
    homes = sorted((run / "kafka-cluster").glob("node-*"))
    out = []
    for home in homes:
        listen = (home / "address").read_text().strip() if (home / "address").exists() else "127.0.0.1:0"
        host, _, port = listen.rpartition(":")
        out.append(KafkaNode(int(home.name.removeprefix("node-")), host, int(port), home))
    return out


def properties(node: KafkaNode, cluster: list[KafkaNode], template: str) -> str:
    """The node's server.properties: internal topics replicated across the cluster as the
    pipeline's are (3 copies, 2 in sync), one copy on a single node."""
    voters = ",".join(f"{n.node_id}@{n.host}:{n.controller_port}" for n in cluster)
    copies = 3 if len(cluster) == 3 else 1
    return template.format(node_id=node.node_id, voters=voters, host=node.host, port=node.port,
                           controller_port=node.controller_port, data=node.home / "data",
                           copies=copies, min_isr=min(copies, 2))


def java(libs: Path, log4j: Path, cluster_size: int) -> list[str]:
    heap = ["-Xms128m", "-Xmx384m"] if cluster_size > 1 else ["-Xms256m", "-Xmx512m"]
    return ["java", *heap, "-XX:+UseG1GC", f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{libs}/*"]


def start(node: KafkaNode, cluster: list[KafkaNode], command: list[str], template: str,
          fail: Callable[[str], Exception]) -> int:
    """Format the node's storage (once) and start it; returns its pid."""
    node.home.mkdir(parents=True, exist_ok=True)
    config = node.home / "server.properties"
    config.write_text(properties(node, cluster, template))
    (node.home / "address").write_text(f"{node.host}:{node.port}")
    cluster_file = (node.home.parent if len(cluster) > 1 else node.home) / "cluster.id"
    if not cluster_file.exists() or cluster_file.read_text().startswith("-"):  # a failed format kept no data
        cluster_file.write_text(cluster_id())
    fmt = subprocess.run([*command, "kafka.tools.StorageTool", "format", "-t", cluster_file.read_text(),
                          "-c", str(config), "--ignore-formatted"], capture_output=True, text=True)
    if fmt.returncode != 0:
        raise fail(f"Kafka storage format failed (node {node.node_id}):\n{fmt.stdout}{fmt.stderr}")
    with node.log.open("ab") as out:
        proc = subprocess.Popen([*command, "kafka.Kafka", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "KAFKA_HEAP_OPTS": ""})
    node.pidfile.write_text(str(proc.pid))
    return proc.pid


def ready(bootstrap: str, brokers: int) -> bool:
    """Every broker registered and unfenced, and the metadata quorum has a leader."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        live = [b for b in admin.describe_cluster()["brokers"] if not b.get("is_fenced")]
    finally:
        admin.close()
    # Registered and unfenced comes a moment before a broker's own listener accepts: a client
    # told about it by the others would be refused (ECONNREFUSED) in that moment.
    return len(live) >= brokers and all(_accepts(b["host"], b["port"]) for b in live)


def _accepts(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def quorum_leader(bootstrap: str) -> int:
    """The node that leads the KRaft metadata quorum (the active controller)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        quorum = admin.describe_metadata_quorum()
    finally:
        admin.close()
    leader = quorum["topics"][0]["partitions"][0]["leader_id"]
    if leader is None or leader < 0:
        raise RuntimeError(f"no metadata quorum leader: {quorum}")
    return int(leader)
