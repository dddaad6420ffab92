"""A Redis Cluster none of whose nodes answers is an outage (ConnectionError, waited out by
the outage loops), not the RedisClusterException redis-py also raises for a command it
cannot route — which stays the defect it is (warning/redis_client.py, WarningCluster)."""

from __future__ import annotations

import asyncio

import pytest
from redis import exceptions

from warning import redis_client
from warning.redis_client import REDIS_DOWN
from warning.runner import free_port


def test_a_cluster_whose_nodes_do_not_answer_is_an_outage() -> None:
    url = f"{redis_client.CLUSTER_SCHEME}127.0.0.1:{free_port()},127.0.0.1:{free_port()}"

    async def main() -> None:
        client = redis_client.connect(url, socket_connect_timeout=0.5)
        try:
            with pytest.raises(exceptions.ConnectionError, match="no Redis Cluster node answered") as raised:
                await client.get("k")
            assert isinstance(raised.value, REDIS_DOWN)
            with pytest.raises(exceptions.ConnectionError, match="no Redis Cluster node answered"):
                async with client.pipeline(transaction=False) as pipe:  # the fan-out's and receipts' path
                    pipe.get("k")
                    await pipe.execute()
        finally:
            await client.aclose()

    asyncio.run(main())
