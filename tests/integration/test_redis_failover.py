"""Redis with Sentinel-managed failover: the pipeline's clients (asyncio and synchronous) find the
master through the Sentinel and follow it when the master is killed and its replica promoted.
A set of its own (master, replica, Sentinel) on free ports, from Debian's redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from structlog.testing import capture_logs

from tests.conftest import deploy_local, wait_for
from warning import redis_client
from warning.config import ConfigError, Settings, load_settings
from warning.keys import Keys
from warning.models import DeliveryJob, Tier
from warning.runner import bindable
from warning.store import DeliveryStore

pytestmark = pytest.mark.integration




def _three_free_ports() -> int:
    """A port P with P-2, P-1 and P free (the Sentinel on P, master and replica below it),
    below the ephemeral range (see warning.runner.free_port)."""
    for _ in range(200):
        port = random.randrange(23_002, 30_000)
        if all(bindable(p) for p in (port - 2, port - 1, port)):
            return port
    raise RuntimeError("no three free ports in a row in 23000-29999")


@pytest.fixture
def failover_set(tmp_path: Path) -> Iterator[tuple[str, ModuleType, list[object]]]:
    sentinel = deploy_local("sentinel")
    url = f"redis+sentinel://127.0.0.1:{_three_free_ports()}/mysvc/0"
    service, group = sentinel.members(url, tmp_path)
    master, replica, watcher = group
    try:
        for member, follows in ((master, None), (replica, master)):
            member.home.mkdir(parents=True)
            subprocess.run(["redis-server", *sentinel.server_args(member, follows)], check=True)
        sentinel.start_sentinel("redis-server", watcher, service, master)

        def ready() -> bool:
            with contextlib.suppress(Exception):
                return bool(sentinel.ready(service, group))
            return False

        wait_for(ready, 60, "master, replica in sync and Sentinel")  # ~12 s alone; the cluster suite loads the host
        yield url, sentinel, group
    finally:
        for member in group:
            with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
                os.kill(int(member.pidfile.read_text()), signal.SIGKILL)


async def test_the_client_follows_the_master_through_a_failover_and_keeps_what_was_replicated(
        failover_set: tuple[str, ModuleType, list[object]]) -> None:
    url, sentinel, group = failover_set
    client = redis_client.connect(url, decode_responses=True, socket_timeout=2)
    try:
        assert redis_client.where(client) == {"redis": "sentinel service mysvc", "setting": "WARNING_REDIS_URL"}
        await client.xadd("q:{push}:red", {"job": "before"})
        await client.xgroup_create("q:{push}:red", "push", id="0")
        assert await client.wait(1, 2000) == 1  # the replica has it

        master = group[0]
        os.kill(int(master.pidfile.read_text()), signal.SIGKILL)  # type: ignore[attr-defined]
        started = time.monotonic()
        while True:  # what a pipeline process's retry loop does
            try:
                await client.xadd("q:{push}:red", {"job": "after"})
                break
            except (redis_client.redis.ConnectionError, redis_client.redis.TimeoutError, OSError):
                assert time.monotonic() - started < 30, "no new master after 30 s"
                await asyncio.sleep(0.2)
        _, port = sentinel.current_master(group[2], "mysvc")
        assert port == group[1].port  # type: ignore[attr-defined]
        entries = await client.xreadgroup("push", "c1", {"q:{push}:red": ">"}, count=10)
        assert [fields["job"] for _, fields in entries[0][1]] == ["before", "after"]
    finally:
        await client.aclose()
    sync = redis_client.connect_sync(url, decode_responses=True)
    try:
        assert sync.xlen("q:{push}:red") == 2
    finally:
        sync.close()


@pytest.mark.parametrize(("url", "message"), [
    ("redis+sentinel://127.0.0.1:26379", "names no service"),
    ("redis+sentinel://127.0.0.1:26379/svc/x", "expected /SERVICE or /SERVICE/DB"),
    ("redis+sentinel://127.0.0.1/svc", "Sentinel address '127.0.0.1' is not host:port"),
    ("redis+cluster://127.0.0.1:7000/3", "a Redis Cluster has database 0 only"),
    ("redis+cluster://127.0.0.1:7000,127.0.0.1", "node address '127.0.0.1' is not host:port"),
    ("memcached://127.0.0.1:7000", "expected redis://host:port/db, redis+sentinel://"),
])
def test_a_bad_redis_url_stops_startup_naming_the_setting(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(redis_url=url)
    assert "redis_url" in str(refused.value) and message in str(refused.value)


def test_a_cluster_url_names_its_nodes_and_password() -> None:
    address = redis_client.parse_cluster("redis+cluster://:s%40cret@10.0.0.1:7000,10.0.0.2:7001/0")
    assert address == redis_client.ClusterAddress([("10.0.0.1", 7000), ("10.0.0.2", 7001)], "s@cret")
    assert redis_client.parse_cluster("redis+cluster://h:1").password is None


def test_a_sentinel_url_names_the_sentinels_service_db_and_password() -> None:
    address = redis_client.parse_sentinel("redis+sentinel://:s%40cret@10.0.0.1:26379,10.0.0.2:26380/warning/3")
    assert address == redis_client.SentinelAddress([("10.0.0.1", 26379), ("10.0.0.2", 26380)], "warning", 3,
                                                   "s@cret")
    assert redis_client.parse_sentinel("redis+sentinel://h:1/svc").db == 0


async def test_enqueue_and_the_handoff_marks_wait_for_the_replica_and_say_when_it_did_not_come(
        failover_set: tuple[str, ModuleType, list[object]], settings: Settings) -> None:
    """WARNING_REDIS_WAIT_REPLICAS: what keeps a delivery from being lost or handed over twice
    is on the replica before the pipeline goes on; a Redis without one says so in the log."""
    url, _, _ = failover_set
    now = time.time()
    jobs = [DeliveryJob(alert_id="a1", version=1, tier=Tier.red, msg_type="Alert", channel="sms", recipient=f"r{i}",
                        address="+8610000000001", text="hello", expires=now + 3600, issued_at=now) for i in range(3)]
    replicated = redis_client.connect(url, decode_responses=True)
    alone = redis_client.connect(settings.redis_url, decode_responses=True)
    try:
        with capture_logs() as logged:
            store = DeliveryStore.create(replicated, Keys(settings.redis_prefix), wait_replicas=1, wait_timeout_ms=2000)
            assert await store.queue.enqueue(jobs) == 3
            await store.receipts.transition(jobs, "sending")
            await store.receipts.transition(jobs, "sent")
            assert await store.receipts.statuses(jobs) == ["sent"] * 3
            assert [e for e in logged if e["event"] == "redis_write_not_replicated"] == []

            # This run's own Redis, asked for one replica more than it has (a cluster's masters have one)
            has = 1 if redis_client.is_cluster(alone) else 0
            lonely = DeliveryStore.create(alone, Keys(settings.redis_prefix), wait_replicas=has + 1,
                                          wait_timeout_ms=20)
            assert await lonely.queue.enqueue(jobs) == 3  # written all the same
            await lonely.receipts.transition(jobs[:1], "sending")
        warned = [(e["what"], e["replicas"], e["wanted"]) for e in logged if e["event"] == "redis_write_not_replicated"]
        assert warned == [("enqueue", has, has + 1), ("sending", has, has + 1)]
    finally:
        await replicated.aclose()
        await alone.aclose()


def test_a_redis_password_never_shows_in_what_a_person_reads() -> None:
    assert redis_client.without_password("redis://:hunter2@10.0.0.1:6379/0") == "redis://:***@10.0.0.1:6379/0"
    assert (redis_client.without_password("redis+sentinel://app:pw@h:26379,h2:26379/svc/1")
            == "redis+sentinel://app:***@h:26379,h2:26379/svc/1")
    assert redis_client.without_password("redis://10.0.0.1:6379/0") == "redis://10.0.0.1:6379/0"
