"""Startup against a Redis that is restarting: wait for it, then load what it holds."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

import orjson
import pytest

from warning import redis_client
from warning.bootstrap import load_grids
from warning.config import ConfigError, Settings
from warning.keys import Keys
from warning.runner import free_port
from warning.store.queue import check_shard_lanes
from warning.targeting.importer import store_grids

pytestmark = pytest.mark.integration

GRID = {"type": "FeatureCollection", "features": [{
    "type": "Feature", "properties": {"grid_id": "440305001777", "name": "网格777"},
    "geometry": {"type": "Polygon", "coordinates": [[[113.9, 22.5], [113.91, 22.5], [113.91, 22.51], [113.9, 22.5]]]}}]}


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        dst.close()


def test_a_process_started_while_redis_loads_its_aof_waits_and_then_loads_the_grids(settings: Settings) -> None:
    """The first two connections get Redis's LOADING reply (as right after a restart, which
    killed the restarted Faust worker in the chaos bench); the third reaches the real Redis."""
    if settings.redis_url.startswith(redis_client.CLUSTER_SCHEME):
        pytest.skip("one Redis behind a proxy; a cluster's startup wait is the unreachable-nodes test's")
    keys = Keys(settings.redis_prefix)
    real = redis_client.connect_sync(settings.redis_url)
    store_grids(real, keys, orjson.dumps(GRID), "test")
    real.close()
    target = urlparse(settings.redis_url)
    server = socket.create_server(("127.0.0.1", 0))
    answered: list[str] = []

    def serve() -> None:
        while len(answered) < 3:
            conn, _ = server.accept()
            if len(answered) < 2:
                conn.recv(65536)
                conn.sendall(b"-LOADING Redis is loading the dataset in memory\r\n")
                conn.close()
                answered.append("loading")
                continue
            upstream = socket.create_connection((target.hostname or "127.0.0.1", target.port or 6379))
            threading.Thread(target=_pipe, args=(conn, upstream), daemon=True).start()
            threading.Thread(target=_pipe, args=(upstream, conn), daemon=True).start()
            answered.append("proxied")

    threading.Thread(target=serve, daemon=True).start()
    via_proxy = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{server.getsockname()[1]}/0"})
    registry, version = load_grids(via_proxy, keys)
    server.close()
    assert answered == ["loading", "loading", "proxied"]
    assert [g.id for g in registry.grids] == ["440305001777"] and version is not None


def test_the_worker_app_wires_its_agents_and_producer_settings(settings: Settings, tmp_path: Path) -> None:
    """Lifecycle fans out itself (no dispatch agent, no Kafka hop), the producer linger and batch
    size are the settings', station windows have an idempotent producer of their own (started with
    the app, so a flush of windows never queues ahead of a warning's records), and Faust's
    per-app directory is under the configured data dir, not the working directory."""
    from faust.types import ProducerT

    from warning.app import create_app
    from warning.bootstrap import bootstrap

    data_dir = tmp_path / "fresh" / "faust"
    c = bootstrap(settings.model_copy(update={"worker_producer_linger_ms": 5.0, "worker_data_dir": data_dir,
                                              "worker_producer_batch_bytes": 131072}), logging=False)
    app = create_app(c)
    assert app.conf.tabledir.resolve().is_relative_to(data_dir / settings.app_id) and data_dir.is_dir()
    assert sorted(agent.name.rsplit(".", 1)[-1] for agent in app.agents.values()) == [
        "cap-ingest", "evaluate", "fanout-units", "lifecycle"]
    assert app.conf.producer_linger == 0.005
    assert app.conf.producer_max_batch_size == app.producer.max_batch_size == 131072  # neither default
    [windows] = [p for p in app._children if isinstance(p, ProducerT) and p is not app.producer]
    assert windows.max_batch_size == 131072 and windows.linger_ms == 5
    for producer in (app.producer, windows):
        assert producer._settings_extra() == {"acks": "all", "enable_idempotence": True}  # type: ignore[attr-defined]


def test_shard_lanes_changed_under_queued_jobs_stop_startup_naming_the_setting(settings: Settings) -> None:
    """Jobs queued with one lane, then a process configured with four: it refuses to start
    (the recipients would move lanes); once the old lanes are drained, it starts and records 4."""
    client = redis_client.connect_sync(settings.redis_url, decode_responses=True)
    one, four = Keys(settings.redis_prefix), Keys(settings.redis_prefix, shards=4)
    try:
        check_shard_lanes(client, one, ["sms"])
        client.xadd(one.queue("sms", "red"), {"job": "{}"})
        with pytest.raises(ConfigError) as refused:
            check_shard_lanes(client, four, ["sms"])
        assert "WARNING_SHARD_LANES: 4" in str(refused.value) and "sms shard 0: 1" in str(refused.value)
        assert "WARNING_SHARD_LANES=1" in str(refused.value)
        assert client.get(one.shard_lanes) == "1"
        client.delete(one.queue("sms", "red"))
        check_shard_lanes(client, four, ["sms"])
        assert client.get(one.shard_lanes) == "4"
    finally:
        client.close()


def test_a_cluster_url_whose_nodes_do_not_answer_stops_startup_naming_the_setting(settings: Settings) -> None:
    """Two addresses where nothing listens: after the startup wait, a ConfigError that names
    WARNING_REDIS_URL, the nodes and what to do (and never the password)."""
    dead = [free_port(), free_port()]
    url = f"redis+cluster://:s3cret@127.0.0.1:{dead[0]},127.0.0.1:{dead[1]}"
    with pytest.raises(ConfigError) as refused:
        load_grids(settings.model_copy(update={"redis_url": url}), Keys(settings.redis_prefix), wait_s=0.5)
    message = str(refused.value)
    assert message.startswith("WARNING_REDIS_URL: redis+cluster://:***@127.0.0.1:")
    assert "no node answered as a Redis Cluster" in message and "Name at least one reachable node" in message
    assert "s3cret" not in message


def test_a_single_redis_named_as_a_cluster_stops_startup(settings: Settings) -> None:
    """The local Redis (not cluster-enabled) behind a redis+cluster:// URL is refused, not used."""
    if settings.redis_url.startswith(redis_client.CLUSTER_SCHEME):
        pytest.skip("this run's Redis is a cluster")
    address = urlparse(settings.redis_url) if "://" in settings.redis_url else None
    if address is None or address.hostname is None or settings.redis_url.startswith("redis+sentinel"):
        pytest.skip("needs a plain redis:// URL")
    url = f"redis+cluster://{address.hostname}:{address.port or 6379}"
    with pytest.raises(ConfigError) as refused:
        load_grids(settings.model_copy(update={"redis_url": url}), Keys(settings.redis_prefix), wait_s=0.5)
    assert "WARNING_REDIS_URL" in str(refused.value) and "no node answered as a Redis Cluster" in str(refused.value)
