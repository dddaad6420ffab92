"""The end of a Faust worker's recovery, in an order that drops no event.

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
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.tables.manager import TableManager as FaustTableManager
from faust.tables.recovery import Recovery as FaustRecovery


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
