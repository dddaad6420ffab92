"""The one place that wires settings, stores, rules and the directory together.

Entry points (the Faust worker, channel consumers, the CLI) call :func:`bootstrap` and
pass the result down; nothing else opens connections or reads files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException
from redis.exceptions import TimeoutError as RedisTimeoutError

from warning import redis_client
from warning.cap.render import CapStyle, render_cap
from warning.config import CHANNELS, ConfigError, Settings, load_settings
from warning.control.policy import load_policy
from warning.control.silences import SilenceStore
from warning.delivery import providers
from warning.delivery.cell_broadcast import BroadcastConfig, load_broadcast_config
from warning.delivery.smpp import SmppConfig, load_smpp_config
from warning.heartbeat import Pulse
from warning.keys import Keys
from warning.lifecycle import LifecycleConfig
from warning.logs import configure_logging
from warning.models import AlertVersion, Observation
from warning.response.escalation import EscalationTimers
from warning.rules.evaluate import EvalConfig
from warning.rules.pack import RulePack, load_pack
from warning.store import DeliveryStore
from warning.store.queue import check_shard_lanes
from warning.targeting.directory import Directory, load_directory
from warning.targeting.grids import GridRegistry
from warning.targeting.recipients import RecipientStore
from warning.targeting.templates import Templates, load_templates, shipped
from warning.topics import TopicNames


@dataclass
class Container:
    settings: Settings
    pack: RulePack
    directory: Directory
    keys: Keys
    topics: TopicNames
    grids: GridRegistry
    grids_version: str | None = None
    templates: Templates = field(default_factory=shipped)
    pulse: Pulse = field(default_factory=lambda: Pulse("process"))  # the entry point names the role
    eval_config: EvalConfig = field(default_factory=EvalConfig)
    lifecycle_config: LifecycleConfig = field(default_factory=LifecycleConfig)
    smpp: SmppConfig | None = None  # the SMPP gateways, when sms_provider is smpp
    broadcast: BroadcastConfig = field(default_factory=BroadcastConfig)

    @cached_property
    def redis(self) -> aioredis.Redis:
        """Created on first use, inside the running event loop."""
        return redis_client.connect(self.settings.redis_url, decode_responses=True, health_check_interval=30)

    @cached_property
    def store(self) -> DeliveryStore:
        s = self.settings
        return DeliveryStore.create(self.redis, self.keys, s.redis_wait_replicas, s.redis_wait_timeout_ms)

    @cached_property
    def escalation(self) -> EscalationTimers:
        s = self.settings
        return EscalationTimers(self.redis, self.keys, s.escalation_levels, s.escalation_timeouts_s)

    @cached_property
    def silences(self) -> SilenceStore:
        return SilenceStore(self.redis, self.keys)

    @cached_property
    def recipients(self) -> RecipientStore:
        return RecipientStore(self.redis, self.keys)

    def area_of(self, obs: Observation) -> str:
        """A station's area: from the directory, else the grid its coordinates fall in."""
        area = self.directory.area_of_station(obs.station_id)
        if area.startswith("station:") and obs.lat is not None and obs.lon is not None:
            found = self.grids.at_point(obs.lat, obs.lon)
            if found:
                return found[0].id
        return area

    async def refresh_grids(self) -> None:
        """Reload the registry when `warning grids import` has replaced it."""
        await self.use_grids_version(await self.redis.get(self.keys.grids_version))

    async def use_grids_version(self, version: Any) -> bool:
        """Reload the registry if ``version`` (the stored one, read by the caller, maybe in
        its own pipeline) is newer than the one in use; whether it did."""
        version = str(version) if version is not None else None
        if version is None or version == self.grids_version:
            return False
        raw = await self.redis.get(self.keys.grids)
        if not raw:
            return False
        self.grids = GridRegistry.from_geojson(raw, "redis")
        self.grids_version = version
        return True

    @cached_property
    def cap_style(self) -> CapStyle:
        s = self.settings
        return CapStyle(sender=s.cap_sender, identifier_prefix=s.cap_identifier_prefix,
                        languages=tuple(s.cap_languages), timezone=s.cap_timezone, severity=dict(s.cap_severity))

    def render_cap(self, alert: AlertVersion) -> bytes:
        names = {lang: self.directory.area_name(alert.area, lang) for lang in self.settings.cap_languages}
        return render_cap(alert, self.cap_style, names, self.templates)


REDIS_STARTUP_WAIT_S = 30.0


def _unreachable(settings: Settings, wait_s: float, exc: Exception) -> ConfigError:
    """A Redis Cluster none of whose named nodes answered (or that is no cluster) stops startup."""
    shown = redis_client.without_password(settings.redis_url)
    return ConfigError(f"WARNING_REDIS_URL: {shown}: no node answered as a Redis Cluster within {wait_s:.0f} s "
                       f"({exc}). Name at least one reachable node of the cluster (host:port[,host:port…]), "
                       "or use redis:// for one Redis")


def load_grids(settings: Settings, keys: Keys, wait_s: float = REDIS_STARTUP_WAIT_S) -> tuple[GridRegistry, str | None]:
    """The imported registry from Redis, else the bundled demo grids (and, in the same
    connection, the queues' shard lanes checked against the setting).

    A process (re)started while Redis restarts or loads its AOF waits for it (up to
    ``wait_s``, saying so) instead of dying at startup."""
    deadline = time.monotonic() + wait_s
    delay = 0.1
    while True:
        client: Any = None
        try:
            client = redis_client.connect_sync(settings.redis_url, decode_responses=True,
                                               socket_connect_timeout=min(wait_s, 5.0))
            version, raw = client.get(keys.grids_version), client.get(keys.grids)
            check_shard_lanes(client, keys, CHANNELS)
            break
        except (RedisConnectionError, RedisTimeoutError, RedisClusterException) as exc:  # BusyLoadingError is one
            if time.monotonic() + delay > deadline:
                if isinstance(exc, RedisClusterException) or client is None:
                    raise _unreachable(settings, wait_s, exc) from exc
                raise
            say = structlog.get_logger().warning if wait_s > 5 else structlog.get_logger().info  # a command: one line
            where = redis_client.where(client) if client is not None else {"setting": "WARNING_REDIS_URL"}
            say("redis_unavailable_waiting", error=str(exc), retry_in_s=delay, **where)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        finally:
            if client is not None:
                client.close()
    if raw:
        return GridRegistry.from_geojson(raw, "redis"), str(version) if version is not None else None
    bundled = resources.files("warning.data").joinpath("demo-grids.geojson").read_bytes()
    return GridRegistry.from_geojson(bundled, "warning/data/demo-grids.geojson"), None


def bootstrap(settings: Settings | None = None, logging: bool = True,
              redis_wait_s: float = REDIS_STARTUP_WAIT_S) -> Container:
    """Load and validate everything a process needs; bad config fails here, at startup."""
    settings = settings or load_settings()
    if logging:
        configure_logging(settings.log_level)
    keys = Keys(settings.redis_prefix, settings.shard_lanes)
    pack, directory = load_pack(settings.rules_file), load_directory(settings.directory_file)  # before Redis
    policy, templates = load_policy(settings.release_policy_file), load_templates(settings.templates_file)
    smpp = load_smpp_config(settings.smpp_gateways_file) if settings.sms_provider == "smpp" else None
    if smpp is not None:
        providers.smpp_endpoints(settings, smpp)  # every gateway's password is there, or stop now
    broadcast = load_broadcast_config(settings.cell_broadcast_file)
    grids, version = load_grids(settings, keys, redis_wait_s)
    return Container(
        smpp=smpp,
        broadcast=broadcast,
        settings=settings,
        pack=pack,
        directory=directory,
        keys=keys,
        grids=grids,
        grids_version=version,
        topics=TopicNames(settings.topic_prefix),
        templates=templates,
        lifecycle_config=LifecycleConfig(ttl_s=settings.alert_ttl_s, downgrade_hold_s=settings.downgrade_hold_s,
                                         policy=policy, resident_tiers=frozenset(
                                             t for t, a in directory.audience.items() if a.residents != "none")),
    )
