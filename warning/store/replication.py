"""WAIT after the writes that must outlive a Redis failover (enqueues, the *sending* and
*sent* marks): a replica missing within the timeout is logged, and the write is kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio.client import Pipeline

log = structlog.get_logger()


@dataclass(frozen=True)
class ReplicaWait:
    replicas: int = 0  # WARNING_REDIS_WAIT_REPLICAS: 0 is no WAIT
    timeout_ms: int = 100

    def stage(self, pipe: Pipeline) -> bool:
        """WAIT at the end of ``pipe``; whether it was staged (its reply is then the
        pipeline's last: pass it to :meth:`check`)."""
        if self.replicas:
            pipe.execute_command("WAIT", self.replicas, self.timeout_ms)
        return bool(self.replicas)

    def check(self, replicas: Any, what: str) -> None:
        """Fewer replicas than asked within the timeout: written and kept, but exposed to a failover."""
        if int(replicas) < self.replicas:
            log.warning("redis_write_not_replicated", what=what, replicas=int(replicas), wanted=self.replicas,
                        timeout_ms=self.timeout_ms)
