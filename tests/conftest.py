"""Shared fixtures. Integration tests use the real local Kafka and Redis: the session
starts them (or reuses a running stack) and stops only what it started."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import orjson
import pytest
import redis.asyncio as aioredis

from warning import redis_client
from warning.bench import gridworld
from warning.bench.harness import local_stack
from warning.bootstrap import Container, bootstrap
from warning.config import Settings, load_settings
from warning.control.policy import auto_policy_file
from warning.keys import Keys
from warning.models import Tier
from warning.runner import Processes, env_for, free_port, wait_http
from warning.targeting.importer import import_recipients, seed_demo_directory, store_grids

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")
_READS = ("open", "os.listdir", "os.scandir")


def refuse_reads_beside(root: Path) -> None:
    """A clone must test itself: opening or listing anything beside the checkout (the
    developers' reference folder, a sibling repository) raises, so a test that depends on it fails
    loudly on every machine, not only on a fresh clone. The temporary directory, the home
    directory (Maven's ~/.m2) and the interpreter stay readable when they are siblings."""
    parent = root.parent
    if parent == Path(root.anchor):
        return
    inside = [str(p) + os.sep for p in (root, Path(tempfile.gettempdir()), Path.home(), Path(sys.prefix),
                                        Path(sys.base_prefix))]
    beside, shared = str(parent) + os.sep, str(parent / "shared") + os.sep

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event not in _READS or not args or not isinstance(args[0], str | bytes | os.PathLike):
            return
        path = os.path.normpath(os.path.abspath(os.fsdecode(args[0]))) + os.sep
        if path.startswith(shared) or (path.startswith(beside) and not path.startswith(tuple(inside))):
            raise PermissionError(f"a test read {path.rstrip(os.sep)}, outside the repository {root}: "
                                  "a clone must carry its own data (put it under tests/data/)")

    sys.addaudithook(hook)


def pytest_configure(config: pytest.Config) -> None:
    refuse_reads_beside(ROOT)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Acceptance tests (real processes, minutes) get their own marker: `-m "not acceptance"`."""
    acceptance = ROOT / "tests" / "acceptance"
    for item in items:
        if item.path.is_relative_to(acceptance):
            item.add_marker(pytest.mark.acceptance)


@pytest.fixture(scope="session")
def stack() -> Iterator[None]:
    with local_stack():
        yield


@pytest.fixture
def unique() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(stack: None, unique: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """Settings isolated to this test: own topics, consumer group, Redis keys, sinks, ports.
    Channels write to local sinks; tests of the provider adapters switch to the sandbox.
    Every segment is released at once (tests of delivery); the officers' tests parametrize
    ``settings`` indirectly with a policy file (None: the shipped default policy)."""
    settings = load_settings(topic_prefix=f"{unique}.", app_id=unique, redis_prefix=unique,
                             sink_dir=tmp_path / "sinks", worker_data_dir=tmp_path / "faust", partitions=2,
                             providers="sink", release_policy_file=request.param if hasattr(request, "param")
                             else auto_policy_file(),
                             api_port=free_port(), sandbox_port=free_port(), sandbox_smpp_port=free_port())
    yield settings
    _delete_topics(settings)
    _delete_keys(settings)


def _delete_keys(settings: Settings) -> None:
    """And its Redis keys (processes it started may have written after the fixtures' own cleanup)."""

    client = redis_client.connect_sync(settings.redis_url)
    try:
        batch = []
        for key in client.scan_iter(match=f"{settings.redis_prefix}:*", count=10_000):
            batch.append(key)
            if len(batch) >= 10_000:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)
    finally:
        client.close()


def deploy_local(name: str) -> ModuleType:
    """A module of deploy/local/ (scripts, not a package), loaded by path as its own name."""
    return deploy_script(f"local/{name}.py")


def deploy_script(path: str) -> ModuleType:
    """A script under deploy/ (not a package), loaded by path as its own module."""
    spec = importlib.util.spec_from_file_location("deploy_" + path.removesuffix(".py").replace("/", "_"),
                                                  ROOT / "deploy" / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


async def lane_entries(c: Container, channel: str, tier: Tier) -> list[tuple[str, dict[str, str]]]:
    """A tier's queued stream entries over every shard lane (WARNING_SHARD_LANES), lane by lane."""
    entries: list[tuple[str, dict[str, str]]] = []
    for shard in range(c.keys.shards):
        found: Any = await c.redis.xrange(c.keys.queue(channel, tier, shard))
        entries += found
    return entries


def _delete_topics(settings: Settings) -> None:
    """Leave the developer's Kafka as it was: drop the test's topics and consumer group."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        mine = [t for t in admin.list_topics() if t.startswith((settings.topic_prefix, f"{settings.app_id}-"))]
        if mine:
            admin.delete_topics(mine)
        if any(g["group_id"] == settings.app_id for g in admin.list_groups()):
            admin.delete_groups([settings.app_id])
    finally:
        admin.close()


def seed(settings: Settings) -> None:
    """The bundled demo people and grids, in this test's Redis namespace."""

    client = redis_client.connect_sync(settings.redis_url)
    try:
        seed_demo_directory(client, Keys(settings.redis_prefix))
    finally:
        client.close()


@pytest.fixture
async def container(settings: Settings) -> AsyncIterator[Container]:
    seed(settings)
    c = bootstrap(settings, logging=False)
    yield c
    await _delete_prefix(c.redis, settings.redis_prefix)
    await c.redis.aclose()


@contextlib.asynccontextmanager
async def seeded_container(settings: Settings) -> AsyncIterator[Container]:
    """A container over the demo directory in these settings' namespace (the sandbox's tests)."""
    seed(settings)
    c = bootstrap(settings, logging=False)
    try:
        yield c
    finally:
        await c.redis.aclose()


@contextlib.contextmanager
def sandbox_running(settings: Settings, log_dir: Path) -> Iterator[Processes]:
    """`warning sandbox` (every provider's local server, the SMSC and the CBC) for a test."""
    with Processes(log_dir, env=settings_env(settings)) as procs:
        procs.start("sandbox", "sandbox")
        wait_http(f"{settings.sandbox_url}/healthz", procs)
        yield procs


async def _delete_prefix(redis: aioredis.Redis, prefix: str) -> None:
    async for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
        await redis.delete(key)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process use the same isolated settings."""
    return env_for(settings.model_copy(update={"visibility_timeout_s": 5.0}))


def wait_for(predicate: Callable[[], T], timeout: float = 60.0, what: str = "condition",
             on_timeout: Callable[[], Any] | None = None) -> T:
    """Poll a condition until it holds (no fixed sleeps); fail with what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    extra = f"\n{on_timeout()}" if on_timeout else ""
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}{extra}")


def city_of_residents(settings: Settings, tmp_path: Path, grids: int, per_grid: int, stations: str = "[]") -> Path:
    """Grids 0..grids-1 of the bench's lattice with ``per_grid`` residents each (push), no
    staff, in this test's namespace; returns a directory file with ``stations`` (YAML)."""
    directory = tmp_path / "directory.yaml"
    directory.write_text(f'city: {{code: "440300", name: 深圳市}}\nareas: []\nstations: {stations}\n')
    people = tmp_path / "residents.jsonl"
    people.write_bytes(b"".join(orjson.dumps({"id": f"r{g}-{i}", "role": "resident", "push_token": f"tok-{g}-{i}",
                                              "channels": ["push"], "grid": gridworld.grid_id(g)}) + b"\n"
                                for g in range(grids) for i in range(per_grid)))
    client = redis_client.connect_sync(settings.redis_url)
    try:
        keys = Keys(settings.redis_prefix)
        store_grids(client, keys, gridworld.grids(grids + 1), "test")  # and one empty grid
        assert not import_recipients(client, keys, people).errors
    finally:
        client.close()
    return directory
