"""WAIT after the writes that must outlive a Redis failover (enqueues, the *sending* and
*sent* marks): a replica missing within the timeout is logged, and the write is kept.

WAIT counts the replicas that have the writes *of its own connection*. On Redis Cluster a
pipeline's commands reach each master on one connection, so one WAIT is staged per
master, at the end of the pipeline; a master the pipeline wrote nothing to answers at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline

log = structlog.get_logger()


@dataclass(frozen=True)
class ReplicaWait:
    replicas: int = 0  # WARNING_REDIS_WAIT_REPLICAS: 0 is no WAIT
    timeout_ms: int = 100

    async def execute(self, pipe: Pipeline | ClusterPipeline, what: str | None) -> list[Any]:
        """Run ``pipe``; for a write named by ``what`` (with WAIT on), WAIT at its end: its
        replies are checked and left out of what is returned."""
        if not what or not self.replicas:
            return list(await pipe.execute())
        if isinstance(pipe, ClusterPipeline):
            await pipe.cluster_client.initialize()  # the masters are known (at once when they are)
            masters = pipe.cluster_client.get_primaries()
            for node in masters:
                pipe.execute_command("WAIT", self.replicas, self.timeout_ms, target_nodes=node)
            staged = len(masters)
        else:
            pipe.execute_command("WAIT", self.replicas, self.timeout_ms)
            staged = 1
        replies = list(await pipe.execute())
        written, answers = replies[:len(replies) - staged], replies[len(replies) - staged:]
        if (fewest := min((int(n) for n in answers), default=0)) < self.replicas:
            log.warning("redis_write_not_replicated", what=what, replicas=fewest, wanted=self.replicas,
                        timeout_ms=self.timeout_ms)
        return written
