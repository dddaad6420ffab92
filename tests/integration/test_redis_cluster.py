"""Redis Cluster: the pipeline's repositories on 3 masters + 3 replicas of their own (free
ports, Debian's redis-server, deploy/local/redis_cluster.py), so every run of the suite
exercises the cluster client — slots spread over masters, scripts staged in pipelines,
WAIT per master, and a master killed with its replica taking over."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.conftest import deploy_local, wait_for
from warning import redis_client
from warning.bootstrap import load_grids
from warning.config import Settings
from warning.keys import Keys
from warning.models import DeliveryJob, Tier
from warning.store import DeliveryStore

pytestmark = pytest.mark.integration




def _free_run(count: int) -> int:
    """A port P with P … P+count-1 and their cluster bus ports (+10000) free, all below the
    ephemeral range (no client's source port takes one) and apart from the local stack's 21001."""
    for _ in range(100):
        port = random.randrange(21100, 22700)
        ports = [p + bus for p in range(port, port + count) for bus in (0, 10000)]
        if all(socket.socket().connect_ex(("127.0.0.1", p)) != 0 for p in ports):
            return port
    raise RuntimeError(f"no {count} free ports in a row")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ModuleType, list[Any]]]:
    module = deploy_local("redis_cluster")
    url = f"redis+cluster://127.0.0.1:{_free_run(module.NODES)}"
    group = module.nodes(url, tmp_path_factory.mktemp("redis-cluster"))
    try:
        for node in group:
            node.home.mkdir(parents=True)
            subprocess.run(["redis-server", *module.server_args(node)], check=True)
        wait_for(lambda: all(socket.socket().connect_ex((n.host, n.port)) == 0 for n in group), 30, "six nodes")
        module.create(group)

        def ready() -> bool:
            with contextlib.suppress(Exception):
                return bool(module.ready(group))
            return False

        wait_for(ready, 60, "3 masters with a replica each, every slot served")
        yield url, module, group
    finally:
        for node in group:
            with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
                os.kill(int(node.pidfile.read_text()), signal.SIGKILL)


def jobs(n: int, channel: str = "sms") -> list[DeliveryJob]:
    now = time.time()
    return [DeliveryJob(alert_id="a1", version=1, tier=Tier.red if i % 2 else Tier.yellow, msg_type="Alert",
                        channel=channel, recipient=f"r{i}", address=f"+86138{i:08d}", text=f"to r{i}",
                        expires=now + 3600, issued_at=now) for i in range(n)]


async def test_jobs_spread_over_the_masters_are_queued_once_read_and_marked_with_wait(
        cluster: tuple[str, ModuleType, list[Any]], unique: str) -> None:
    url, _, _ = cluster
    client = redis_client.connect(url, decode_responses=True)
    keys = Keys(unique, shards=6)
    try:
        assert redis_client.where(client)["setting"] == "WARNING_REDIS_URL"
        with capture_logs() as logged:
            store = DeliveryStore.create(client, keys, wait_replicas=1, wait_timeout_ms=2000)
            await client.ping()  # the slot map, before the first WAIT names the masters
            sent = jobs(60)
            assert await store.queue.enqueue(sent, batch=7) == 60
            assert await store.queue.enqueue(sent, batch=7) == 0  # a replay adds nothing
            masters = {client.get_node_from_key(keys.queue("sms", Tier.red, s)).name  # type: ignore[attr-defined]
                       for s in range(6)}
            assert len(masters) >= 2, "six shard lanes on one master: nothing spread"
            await store.queue.ensure_group("sms")
            claimed = []
            for _ in range(20):
                claimed += await store.queue.read("sms", "c1", 100, 50)
                if len(claimed) >= 60:
                    break
            assert sorted(c.job.recipient for c in claimed) == sorted(j.recipient for j in sent)
            assert {c.job.text for c in claimed if c.job.recipient == "r7"} == {"to r7"}
            await store.receipts.transition(sent, "sending")
            await store.receipts.transition(sent, "sent")
            await store.queue.ack_entries("sms", claimed)
        assert await store.receipts.statuses(sent) == ["sent"] * 60
        assert {k: v for k, v in (await store.receipts.counts("a1", "sms")).items() if v} == {"targeted": 60,
                                                                                              "sent": 60}
        assert [e for e in logged if e["event"] == "redis_write_not_replicated"] == []
    finally:
        await client.aclose()


async def test_a_script_staged_in_a_pipeline_runs_on_masters_whose_script_cache_is_empty(
        cluster: tuple[str, ModuleType, list[Any]], unique: str) -> None:
    """As on a replica just promoted: no script cached, and the pipelined enqueue still runs."""
    url, _, _ = cluster
    client = redis_client.connect(url, decode_responses=True)
    try:
        store = DeliveryStore.create(client, Keys(unique, shards=6))
        await client.script_flush()  # every master
        assert await store.queue.enqueue(jobs(12, "push")) == 12
        await store.receipts.transition(jobs(12, "push"), "sending")
        assert await store.receipts.statuses(jobs(12, "push")) == ["sending"] * 12
    finally:
        await client.aclose()


def test_startup_reads_the_grids_and_records_the_shard_lanes_on_a_cluster(
        cluster: tuple[str, ModuleType, list[Any]], settings: Settings) -> None:
    url, _, _ = cluster
    registry, version = load_grids(settings.model_copy(update={"redis_url": url}), Keys(settings.redis_prefix, 6))
    assert registry.grids and version is None  # nothing imported here: the bundled demo grids
    sync = redis_client.connect_sync(url, decode_responses=True)
    try:
        assert sync.get(Keys(settings.redis_prefix).shard_lanes) == "6"
    finally:
        sync.close()


async def test_a_killed_master_is_replaced_by_its_replica_and_what_was_waited_for_is_there(
        cluster: tuple[str, ModuleType, list[Any]], unique: str) -> None:
    """kill -9 of the master holding a lane: the client retries through the failover (as the
    consumers' loops do) and finds every job WAIT confirmed on the replica."""
    url, _, group = cluster
    client = redis_client.connect(url, decode_responses=True, socket_timeout=2)
    keys = Keys(unique, shards=1)
    try:
        store = DeliveryStore.create(client, keys, wait_replicas=1, wait_timeout_ms=2000)
        await client.ping()
        before = jobs(20, "grid")
        assert await store.queue.enqueue(before) == 20
        lane = keys.queue("grid", Tier.red, 0)
        victim_port = client.get_node_from_key(lane).port  # type: ignore[attr-defined]
        victim = next(n for n in group if n.port == victim_port)
        os.kill(int(victim.pidfile.read_text()), signal.SIGKILL)
        started = time.monotonic()
        after = [j.model_copy(update={"recipient": f"late{i}"}) for i, j in enumerate(jobs(5, "grid"))]
        while True:
            try:
                assert await store.queue.enqueue(after) == 5
                break
            except redis_client.REDIS_DOWN:
                assert time.monotonic() - started < 60, "no master for the slot after 60 s"
                await asyncio.sleep(0.2)
        assert client.get_node_from_key(lane).port != victim_port  # type: ignore[attr-defined]
        assert int(await client.xlen(lane)) + int(await client.xlen(keys.queue("grid", Tier.yellow, 0))) == 25
    finally:
        await client.aclose()
