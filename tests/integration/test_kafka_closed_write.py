"""A Kafka request written on a transport uvloop has just closed is a broken connection
(``KafkaConnectionError``, retried by aiokafka), not a ``RuntimeError`` that ends a
producer's sender routine or a consumer's fetcher (warning/kafka_closed_write.py).

On a real connection to the local broker: its transport torn down, one loop iteration
for uvloop to close the handle, then a request, as a sender would write it before
aiokafka's reader task has noticed."""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError
from aiokafka.protocol.metadata import MetadataRequest

from warning import kafka_closed_write
from warning.config import Settings


def test_a_request_on_a_transport_uvloop_closed_is_a_broken_connection(settings: Settings) -> None:
    kafka_closed_write.install()
    host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")

    async def main() -> None:
        conn = await create_conn(host, int(port))
        try:
            assert type(await conn.send(MetadataRequest([]))).__name__.startswith("MetadataResponse")
            conn._writer.transport.abort()  # the broker's reset, as the loop sees it
            await asyncio.sleep(0)  # uvloop closes the handle; aiokafka's reader has not run yet
            with pytest.raises(KafkaConnectionError, match=r"broken: .*handler is closed"):
                conn.send(MetadataRequest([]))
            assert not conn.connected()  # closed, so the client opens a new one
        finally:
            conn.close()

    uvloop.run(main())


def test_the_uvloop_processes_install_it_once() -> None:
    """``eventloop.use("uvloop")`` (the worker's and the consumers' start) installs it, and
    installing again does not wrap the wrapper."""
    from aiokafka.conn import AIOKafkaConnection

    from warning import eventloop

    try:
        eventloop.use("uvloop")
        first = AIOKafkaConnection.send
        assert getattr(first, kafka_closed_write._INSTALLED)
        kafka_closed_write.install()
        assert AIOKafkaConnection.send is first
    finally:
        asyncio.set_event_loop_policy(None)
