"""What every `warning` command shares: the container, JSON output, the console."""

from __future__ import annotations

import os
import sys
from typing import Any

import orjson
from kafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError
from rich.console import Console

from warning import redis_client
from warning.config import load_settings
from warning.redis_client import REDIS_DOWN

console = Console(stderr=True)


COMMAND_WAIT_S = 3.0  # a command run by a person gives up on an unreachable service this soon


def command_settings() -> Any:
    """Settings for a command a person runs: Kafka gets a few seconds to answer, and its
    client's reconnect chatter stays out of the terminal (the error says it in one line)."""
    import logging

    settings = load_settings()
    if os.environ.get("WARNING_LOG_LEVEL", "").upper() != "DEBUG":
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    return settings.model_copy(update={"kafka_connect_timeout_s": min(settings.kafka_connect_timeout_s,
                                                                      COMMAND_WAIT_S + 2)})


def load_container(logging: bool = True, serving: str | None = None) -> Any:
    """The container for a command. ``serving`` (a role: worker, consumer-sms, …, or run) is a
    long-running process: it waits for Redis and Kafka as long as they take to come back and
    beats as that role; a command a person runs says within seconds that one does not answer."""
    from warning.bootstrap import REDIS_STARTUP_WAIT_S, bootstrap
    from warning.heartbeat import Pulse

    settings = load_settings() if serving else command_settings()
    c = bootstrap(settings, logging=logging, redis_wait_s=REDIS_STARTUP_WAIT_S if serving else COMMAND_WAIT_S)
    if serving:
        c.pulse = Pulse(serving)
    return c


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")


KAFKA_DOWN = (KafkaTimeoutError, KafkaConnectionError, NodeNotReadyError)
UNREACHABLE = (*REDIS_DOWN, *KAFKA_DOWN)


def unreachable(exc: BaseException) -> str:
    """One line a person can act on: which service, where, the setting that names it, the fix."""
    try:
        settings = load_settings()
        redis_url, kafka = redis_client.without_password(settings.redis_url), settings.kafka_bootstrap
    except ValueError:
        redis_url, kafka = "(see WARNING_REDIS_URL)", "(see WARNING_KAFKA_BOOTSTRAP)"
    reason = (str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__).rstrip(".")
    if isinstance(exc, REDIS_DOWN):
        return (f"cannot reach Redis at {redis_url} (WARNING_REDIS_URL): {reason}. Start the local stack with "
                "`make up`, or set WARNING_REDIS_URL to your Redis. (--debug shows the traceback)")
    return (f"cannot reach Kafka at {kafka} (WARNING_KAFKA_BOOTSTRAP): {reason}. Start the local stack with "
            "`make up`, or set WARNING_KAFKA_BOOTSTRAP to your brokers. (--debug shows the traceback)")
