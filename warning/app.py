"""The Faust app: configuration and agent registration only, no logic.

Built by a function, not at import, so each worker (and each test) gets the topics,
group and Redis namespace of its own settings.
"""

from __future__ import annotations

from typing import Any

import faust
import structlog

from warning import heartbeat
from warning.bootstrap import Container
from warning.faust_recovery import TableManager, filter_fetches
from warning.partitions import KeptHashPartitioner
from warning.pipeline import cap_feed, evaluate, lifecycle, units
from warning.pipeline.produce import idempotent
from warning.redis_client import REDIS_OR_SOCKET_DOWN


def create_app(container: Container) -> faust.App:
    settings = container.settings
    datadir = settings.worker_data_dir / settings.app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    app = faust.App(
        settings.app_id,
        broker=settings.faust_broker,
        store="memory://",  # tables are rebuilt from their changelog topics on restart
        datadir=str(datadir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,  # its changelogs and leader topic
        table_standby_replicas=settings.table_standby_replicas,
        producer_acks=-1,
        producer_linger=settings.worker_producer_linger_ms / 1000,
        producer_max_batch_size=settings.worker_producer_batch_bytes,
        producer_partitioner=KeptHashPartitioner(),
        consumer_auto_offset_reset="earliest",
        # Evaluate acknowledges a message only once its window state is in the changelog,
        # so a quiet partition may hold unacknowledged messages; a rebalance must not wait
        # for them: the new owner replays them, and every stage is idempotent to a replay.
        stream_wait_empty=False,
        broker_session_timeout=settings.worker_session_timeout_s,
        broker_heartbeat_interval=max(settings.worker_session_timeout_s / 5, 1.0),
        # The rebalance timeout is the max poll interval (Faust: 1000 s). A worker killed while
        # a rebalance is in progress keeps the group waiting that long for it to rejoin, so
        # its replacement would sit idle for minutes; Faust polls in its own thread, so a
        # short interval costs nothing in normal operation.
        broker_max_poll_interval=max(6 * settings.worker_session_timeout_s, 30.0),
        broker_rebalance_timeout=max(6 * settings.worker_session_timeout_s, 30.0),
        web_enabled=False,
        autodiscover=False,
        TableManager=TableManager,  # the end of recovery without the race that dropped events
    )
    _fetch_promptly(app)
    filter_fetches(app)  # aiokafka read Faust's empty filter (all paused) as none: rebalances dropped records
    idempotent(app.producer)
    _beat(app, container)
    evaluate.register(app, container)
    cap_feed.register(app, container)
    lifecycle.register(app, container)
    units.register(app, container)
    return app


def _beat(app: faust.App, c: Container) -> None:
    """The worker's heartbeat (warning/heartbeat.py): alive, and when its agents last took an event."""

    async def beat() -> None:
        try:
            await heartbeat.beat(c.redis, c.keys, c.pulse)
        except REDIS_OR_SOCKET_DOWN as exc:
            structlog.get_logger().warning("heartbeat_skipped", role=c.pulse.role, error=str(exc))

    app.task(beat)  # at once, then every BEAT_S (a Faust timer first waits its interval)
    app.timer(heartbeat.BEAT_S)(beat)


# aiokafka sends no fetch to a broker while any partition it leads still holds records the
# application has not taken, for up to ``prefetch_backoff`` (0.1 s, not a consumer option).
# On a single broker that is every partition: a reading or an alert arriving meanwhile waited
# that long — measured as 60-105 ms stalls at every Kafka hop, 3 % of warnings. 2 ms keeps
# the back-pressure and takes the stall out of the path.
PREFETCH_BACKOFF_S = 0.002


def _fetch_promptly(app: faust.App) -> None:
    async def on_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        fetcher = getattr(getattr(getattr(app.consumer, "_thread", None), "_consumer", None), "_fetcher", None)
        if fetcher is not None and hasattr(fetcher, "_prefetch_backoff"):
            fetcher._prefetch_backoff = PREFETCH_BACKOFF_S
        else:  # a faust/aiokafka upgrade moved it: correct, only slower at the tail
            structlog.get_logger().warning("prefetch_backoff_not_set", reason="aiokafka fetcher not found")

    app.on_partitions_assigned.connect(on_assigned)
