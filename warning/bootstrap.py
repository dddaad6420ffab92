"""The one place that wires settings, stores, rules and the directory together.

Entry points (the Faust worker, channel consumers, the CLI) call :func:`bootstrap` and
pass the result down; nothing else opens connections or reads files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import redis.asyncio as aioredis

from warning.cap.render import CapStyle, render_cap
from warning.config import Settings, load_settings
from warning.keys import Keys
from warning.lifecycle import LifecycleConfig
from warning.logs import configure_logging
from warning.models import AlertVersion
from warning.queue import DeliveryStore
from warning.rules.evaluate import EvalConfig
from warning.rules.pack import RulePack, load_pack
from warning.targeting.directory import Directory, load_directory
from warning.topics import TopicNames


@dataclass
class Container:
    settings: Settings
    pack: RulePack
    directory: Directory
    keys: Keys
    topics: TopicNames
    eval_config: EvalConfig = field(default_factory=EvalConfig)
    lifecycle_config: LifecycleConfig = field(default_factory=LifecycleConfig)

    @cached_property
    def redis(self) -> aioredis.Redis:
        """Created on first use, inside the running event loop."""
        return aioredis.Redis.from_url(self.settings.redis_url, decode_responses=True,
                                       health_check_interval=30)

    @cached_property
    def store(self) -> DeliveryStore:
        return DeliveryStore(self.redis, self.keys)

    @cached_property
    def cap_style(self) -> CapStyle:
        s = self.settings
        return CapStyle(sender=s.cap_sender, identifier_prefix=s.cap_identifier_prefix,
                        languages=tuple(s.cap_languages), timezone=s.cap_timezone, severity=dict(s.cap_severity))

    def render_cap(self, alert: AlertVersion) -> bytes:
        names = {lang: self.directory.area_name(alert.area, lang) for lang in self.settings.cap_languages}
        return render_cap(alert, self.cap_style, names)


def bootstrap(settings: Settings | None = None, logging: bool = True) -> Container:
    """Load and validate everything a process needs; bad config fails here, at startup."""
    settings = settings or load_settings()
    if logging:
        configure_logging(settings.log_level)
    return Container(
        settings=settings,
        pack=load_pack(settings.rules_file),
        directory=load_directory(settings.directory_file),
        keys=Keys(settings.redis_prefix),
        topics=TopicNames(settings.topic_prefix),
        lifecycle_config=LifecycleConfig(ttl_s=settings.alert_ttl_s,
                                         downgrade_hold_s=settings.downgrade_hold_s),
    )
