"""What this host allows, measured beside the scenarios so a missed target can be read against it.

Latency floor: a reading reaches a grid webhook through Kafka (producer -> broker -> a
consumer process), a Redis stream (XADD -> XREADGROUP in a delivery process) and one HTTP
POST to the sink. Two relay processes make exactly those hops and nothing else: no rules,
no state, no lifecycle, no signing. Measured in the same run, with the same producer, sink
and rate as the `latency` scenario, it says how much of our figure is the hops themselves.

Webhook ceiling: one Python process posting to the shared sink as fast as it can (aiohttp,
50 connections), nothing else running: the most webhooks a second any Python delivery
process could hand to that sink on this host — a bound on the `peer` scenario's side.

    python -m warning.bench.limits kafka-to-redis BOOTSTRAP TOPIC REDIS_URL STREAM
    python -m warning.bench.limits redis-to-http REDIS_URL STREAM URL
    python -m warning.bench.limits post URL COUNT      (prints posts per second)
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from warning import heap
from warning.bench.gridworld import WebhookSink, percentile
from warning.bench.ours import wait_for_keys
from warning.config import Settings
from warning.runner import _die_with_parent

GROUP = "floor"


async def kafka_to_redis(bootstrap: str, topic: str, redis_url: str, stream: str) -> None:
    from aiokafka import AIOKafkaConsumer

    from warning import redis_client

    redis = redis_client.connect(redis_url)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="latest",
                                enable_auto_commit=False)
    await consumer.start()
    heap.settle()
    try:
        async for record in consumer:
            await redis.xadd(stream, {"v": record.value or b""})
    finally:
        await consumer.stop()


async def redis_to_http(redis_url: str, stream: str, url: str) -> None:
    import aiohttp
    from redis.exceptions import ResponseError

    from warning import redis_client

    redis = redis_client.connect(redis_url)
    try:
        await redis.xgroup_create(stream, GROUP, id="$", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):  # only "the group exists already" is expected
            raise
    heap.settle()
    async with aiohttp.ClientSession() as http:
        while True:
            reply: Any = await redis.xreadgroup(GROUP, "relay", {stream: ">"}, count=100, block=1000)
            for _, entries in reply or []:
                for entry_id, fields in entries:
                    async with http.post(url, data=fields[b"v"], headers={"Content-Type": "application/json"}) as r:
                        await r.read()
                    await redis.xack(stream, GROUP, entry_id)


@contextlib.contextmanager
def relays(settings: Settings, topic: str, stream: str, sink: WebhookSink) -> Iterator[None]:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="warning-bench-floor")
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()
    module = [sys.executable, "-m", "warning.bench.limits"]
    procs = [subprocess.Popen([*module, "redis-to-http", settings.redis_url, stream, f"{sink.url}/floor"],
                              preexec_fn=_die_with_parent),
             subprocess.Popen([*module, "kafka-to-redis", settings.kafka_bootstrap, topic, settings.redis_url,
                               stream], preexec_fn=_die_with_parent)]
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


def latency_floor(settings: Settings, sink: WebhookSink, prod: KafkaProducer, samples: int,
                  rate: float) -> dict[str, float]:
    """Produce ``samples`` messages at ``rate`` through the relays; their latency figures."""
    topic, stream = f"{settings.topic_prefix}floor", f"{settings.redis_prefix}:floor"
    with relays(settings, topic, stream, sink):
        deadline = time.monotonic() + 60
        for i in range(10_000):  # until a message makes it: both relays are up and subscribed
            key = f"floor-warm-{i}"
            prod.send(topic, orjson.dumps({"grid": key})).get(10)
            with contextlib.suppress(TimeoutError):
                wait_for_keys(sink, {key}, timeout=0.5)
                break
            if time.monotonic() > deadline:
                raise TimeoutError("the floor relays did not pass a message within 60 s")
        sent: dict[str, float] = {}
        start = time.monotonic()
        for i in range(samples):
            key = f"floor-{i}"
            sent[key] = time.time()
            prod.send(topic, orjson.dumps({"grid": key}))
            prod.flush()
            time.sleep(max(0.0, start + (i + 1) / rate - time.monotonic()))
        got = wait_for_keys(sink, set(sent), timeout=60)
    latencies = sorted((got[k] - t) * 1000 for k, t in sent.items())
    return {"floor_p50_ms": round(percentile(latencies, 0.5), 2), "floor_p99_ms": round(percentile(latencies, 0.99), 2)}


POSTERS = 50


async def post(url: str, count: str) -> None:
    import aiohttp

    body = orjson.dumps({"grid": "ceiling", "text": "x" * 400})  # about a grid webhook's size without its CAP
    todo = iter(range(int(count)))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POSTERS)) as http:
        async def poster() -> None:
            for _ in todo:
                async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                    await r.read()

        started = time.perf_counter()
        await asyncio.gather(*(poster() for _ in range(POSTERS)))
        print(round(int(count) / (time.perf_counter() - started)))


def webhook_ceiling(sink: WebhookSink, count: int = 20_000) -> int:
    """Posts per second from one Python process to ``sink`` (a process of its own, like every client)."""
    done = subprocess.run([sys.executable, "-m", "warning.bench.limits", "post", f"{sink.url}/ceiling", str(count)],
                          check=True, capture_output=True, text=True, timeout=600)
    return int(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    main = {"kafka-to-redis": kafka_to_redis, "redis-to-http": redis_to_http, "post": post}[command]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(*args))  # type: ignore[operator]
