"""The local stack's own helpers (deploy/local/stack.py is a script: loaded by path)."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import deploy_local

ROOT = Path(__file__).resolve().parents[2]




def test_a_cluster_id_never_starts_with_a_dash_and_is_a_uuid_in_url_safe_base64() -> None:
    """Kafka's StorageTool read an id starting with '-' as an option: 1 fresh stack in 64 did not start."""
    cluster_id = deploy_local("stack").kraft.cluster_id
    ids = [cluster_id() for _ in range(3000)]  # ~47 would start with '-' unguarded
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(i) == 22 and len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)


def _daemon() -> int:
    """A process whose parent has exited, as Kafka and Redis are after `up` (init reaps it)."""
    shell = subprocess.run(["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True,
                           check=True)
    return int(shell.stdout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_down_stops_only_the_named_services_and_running_lists_the_live_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Whoever started a half-running stack stops only its own half (a test session once
    stopped the Redis a bench was restarting)."""
    stack = deploy_local("stack")
    pids = {"kafka": _daemon(), "redis": _daemon()}
    try:
        services = {}
        for name, pid in pids.items():
            (pidfile := tmp_path / f"{name}.pid").write_text(str(pid))
            services[name] = (name.title(), pidfile)
        monkeypatch.setattr(stack, "SERVICES", services)
        monkeypatch.setattr(stack, "REDIS_URL", "redis://127.0.0.1:36379/0")  # one Redis, whatever this run uses
        assert stack.main(["stack.py", "running"]) == 0
        assert capsys.readouterr().out.split() == ["kafka", "redis"]

        assert stack.main(["stack.py", "down", "redis"]) == 0
        assert capsys.readouterr().out == f"Redis stopped (pid {pids['redis']})\n"
        assert not _alive(pids["redis"]) and not services["redis"][1].exists()
        assert _alive(pids["kafka"]) and services["kafka"][1].exists()
        assert stack.main(["stack.py", "running"]) == 0
        assert capsys.readouterr().out.split() == ["kafka"]
    finally:
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("argv", [["down", "postgres"], ["up", "kafka"], ["running", "redis"], [], ["start"]])
def test_unknown_commands_and_services_are_refused_with_the_usage(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert deploy_local("stack").main(["stack.py", *argv]) == 2
    assert "Usage: python deploy/local/stack.py up|down [kafka|redis ...]" in capsys.readouterr().err


def test_kafka_nodes_come_from_the_bootstrap_list_or_two_ports_apart(tmp_path: Path) -> None:
    kraft = deploy_local("stack").kraft
    (single,) = kraft.nodes("127.0.0.1:39092", tmp_path)
    assert (single.node_id, single.port, single.controller_port, single.home) == (1, 39092, 39093, tmp_path / "kafka")
    spread = kraft.nodes("127.0.0.1:39092", tmp_path, 3)
    assert [(n.node_id, n.port, n.home.name) for n in spread] == [(1, 39092, "node-1"), (2, 39094, "node-2"),
                                                                   (3, 39096, "node-3")]
    listed = kraft.nodes("127.0.0.1:39192,127.0.0.1:39194,127.0.0.1:39196", tmp_path)
    assert [n.port for n in listed] == [39192, 39194, 39196]
    props = kraft.properties(listed[1], listed, (ROOT / "deploy/local/kafka-server.properties").read_text())
    assert "node.id=2\n" in props
    assert "controller.quorum.voters=1@127.0.0.1:39193,2@127.0.0.1:39195,3@127.0.0.1:39197\n" in props
    assert "offsets.topic.replication.factor=3\n" in props and "min.insync.replicas=2\n" in props
    with pytest.raises(ValueError, match="--kafka-nodes 2 but WARNING_KAFKA_BOOTSTRAP names 3 nodes"):
        kraft.nodes("127.0.0.1:39192,127.0.0.1:39194,127.0.0.1:39196", tmp_path, 2)
    with pytest.raises(ValueError, match="a local Kafka is 1 or 3 nodes, not 2"):
        kraft.nodes("127.0.0.1:39092", tmp_path, 2)
