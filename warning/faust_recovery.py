"""A Faust worker's recovery and rebalances, without the races that dropped fetched events.

faust-streaming 0.15's ``Recovery.on_recovery_completed`` resumes the stream partitions,
then awaits the seek to their committed offsets, then resumes flow control, which clears
every agent's queue. The fetcher runs during that await: when the tables had a changelog to
read, flow was resumed for it. An event fetched into an agent's queue inside the await and
not yet taken was cleared, and the consumer's position was already past it. The reading was
never evaluated and its partition never committed again: a restarted worker that looked
ready and dispatched nothing (~1 chaos run in 40; tests/acceptance/racing_worker.py makes
it certain; faust-streaming issue #596 reports the same race). Here the seek and the clear
happen while the stream partitions are still paused, and they are resumed after the clear
with no await in between, so whatever is fetched from them stays in the queues.

Faust "pauses" a partition by leaving it out of the set of partitions it asks aiokafka
for records from, and aiokafka reads an empty set as no filter at all. During a rebalance
every partition is paused, so a fetch still waiting from before it returned records of any
partition: Faust dropped them (flow stopped) and sought back only partitions with a
committed offset. A partition its group never committed (a deployment's first seconds)
kept its position past them, and the reading was never evaluated
(tests/acceptance/test_worker_restart.py makes it certain). ``FetchFilter`` is that set,
never empty to aiokafka.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import structlog
from faust.tables.manager import TableManager as FaustTableManager
from faust.tables.recovery import Recovery as FaustRecovery
from faust.types import TP


class Recovery(FaustRecovery):
    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        """Faust's method (0.15.3), with the stream partitions resumed last."""
        app: Any = self.app
        consumer = app.consumer
        self.log.info("Restore complete!")
        await app.on_rebalance_complete.send()
        self._set_recovery_ended()
        callbacks = [asyncio.ensure_future(table.on_recovery_completed(self.actives_for_table[table],
                                                                       self.standbys_for_table[table]))
                     for table in self.tables.values()]
        if callbacks:
            await asyncio.wait(callbacks)
        assignment = consumer.assignment()
        if app.consumer_generation_id != generation_id:
            self.log.warning(f"Recovery rebalancing again app id {app.consumer_generation_id} param {generation_id}")
            return
        if assignment:
            self.log.info("Seek stream partitions to committed offsets.")
            await self._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
        self.completed.set()
        app.flow_control.resume()  # clears the agents' queues: nothing can be in them yet
        consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
        consumer.resume_flow()
        await app._fetcher.maybe_start()
        self.tables.on_actives_ready()
        if not app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        app.on_rebalance_end()
        self.log.info("Worker ready")


class TableManager(FaustTableManager):
    """Faust's table manager with the recovery above (``faust.App(TableManager=...)``)."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = Recovery(self.app, self, beacon=self.beacon, loop=self.loop)
        assert isinstance(self._recovery, Recovery)
        return self._recovery


class FetchFilter(set[TP]):
    """The partitions Faust takes records from; true even when empty, so that aiokafka
    filters by it (returns nothing) instead of returning every partition's records."""

    def __bool__(self) -> bool:
        return True


def filter_fetches(app: faust.App) -> None:
    """Install ``FetchFilter`` as the consumer's active partitions (Faust mutates that set in
    place; it is created once, when the consumer is)."""
    consumer: Any = app.consumer
    consumer._active_partitions = FetchFilter(consumer._active_partitions or ())

    async def check(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        if not isinstance(consumer._active_partitions, FetchFilter):  # a Faust upgrade or restart replaced it
            structlog.get_logger().warning("fetch_filter_replaced", reason="Faust reset its active partitions")
            consumer._active_partitions = FetchFilter(consumer._active_partitions or ())

    app.on_partitions_assigned.connect(check)
