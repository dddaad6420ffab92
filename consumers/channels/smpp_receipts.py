"""SMPP delivery receipts (``deliver_sm`` with the receipt bit) -> the delivery's receipt.

The bind's reader only parses and queues: a reader that waits on Redis per receipt lets
smpp34's inbound queue fill, and then the SMSC's receipts are refused and the session
suffers. A task settles the queue in batches — one round trip for the message ids, one
for the settles, one receipt move per outcome (`settle_receipts`, which Twilio's callbacks use too): the
receipt moves once, and anything but *delivered* goes to the recipient's next channel.

The SMSC's message id names the delivery through the key the submit wrote. A receipt can
overtake that write, or the worker's "awaiting receipt" mark that follows the batch, so
one that finds nothing yet is held and tried again for ``hold_s`` before it is logged as
unmatched. smpp34 acks every PDU as it arrives: a receipt that cannot be read is logged
with its reason, and its delivery is settled later by the receipt timeout (the next
channel), never lost.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import structlog

from warning.delivery.fallback import FinalReceipt, settle_receipts
from warning.delivery.receipts import Receipts
from warning.delivery.smpp import ESM_DELIVERY_RECEIPT, Receipt, ReceiptError, parse_receipt
from warning.logs import mask_phone

log = structlog.get_logger()
IN_PROGRESS = frozenset({"queued", "sending"})  # a receipt for these is early: the worker is still marking
BATCH = 500


@dataclass(frozen=True)
class Pending:
    gateway: str
    receipt: Receipt
    deadline: float


class SmppReceipts:
    def __init__(self, receipts: Receipts, hold_s: float = 30.0) -> None:
        self.receipts = receipts
        self.hold_s = hold_s
        self._inbox: deque[Pending] = deque()
        self._held: list[Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.settled = 0
        self.unmatched = 0
        self.malformed = 0

    async def __call__(self, gateway: str, event: Any) -> None:
        """From the bind's reader: parse and queue, never wait on Redis."""
        if not event.esm_class & ESM_DELIVERY_RECEIPT:
            log.info("smpp_mo_ignored", gateway=gateway, sender=mask_phone("+" + event.source_addr))
            return
        try:
            receipt = parse_receipt(event.short_message, {t.tag: t.value for t in event.tlvs})
        except ReceiptError as exc:
            self.malformed += 1
            log.warning("smpp_receipt_malformed", gateway=gateway, reason=str(exc),
                        effect="its delivery is settled by the receipt timeout")
            return
        self._inbox.append(Pending(gateway, receipt, time.monotonic() + self.hold_s))
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="smpp-receipts")

    async def _run(self) -> None:
        while not self._closed:
            if not self._inbox:
                if not self._held:
                    await self._wake.wait()
                    self._wake.clear()
                    continue
                await asyncio.sleep(0.2)  # held ones again, a little later
                self._inbox.extend(self._held)
                self._held.clear()
            batch = [self._inbox.popleft() for _ in range(min(BATCH, len(self._inbox)))]
            try:
                done = await self._apply(batch)
            except Exception:  # Redis away: keep them, try again
                log.exception("smpp_receipts_retrying", count=len(batch))
                self._held.extend(batch)
                await asyncio.sleep(1.0)
                continue
            now = time.monotonic()
            for item, used in zip(batch, done, strict=True):
                if used:
                    continue
                if now < item.deadline:
                    self._held.append(item)
                    continue
                self.unmatched += 1
                log.warning("smpp_receipt_unmatched", gateway=item.gateway, message_id=item.receipt.message_id,
                            state=item.receipt.state,
                            reason=f"no delivery of ours has this message id after {self.hold_s:.0f}s")

    async def _apply(self, batch: list[Pending]) -> list[bool]:
        """Whether each receipt is used (or needs nothing more); False to hold it."""
        store = self.receipts.store
        async with store.redis.pipeline(transaction=False) as pipe:
            for item in batch:
                pipe.get(store.keys.smpp_message(item.gateway, item.receipt.message_id))
            found = [str(d) if d is not None else None for d in await pipe.execute()]
        done = [False] * len(batch)
        final = [i for i, d in enumerate(found) if d is not None and batch[i].receipt.final_status]
        passing = [i for i, d in enumerate(found) if d is not None and not batch[i].receipt.final_status]
        if passing:  # ENROUTE, ACCEPTD: noted on the receipt, nothing settles
            async with store.redis.pipeline(transaction=False) as pipe:
                for i in passing:
                    pipe.hset(store.keys.delivery(str(found[i])), f"provider_{batch[i].receipt.state.lower()}_at",
                              time.time())
                    done[i] = True
                await pipe.execute()
        finals = [FinalReceipt(str(found[i]), str(batch[i].receipt.final_status), batch[i].receipt.reason,
                               {"gateway": batch[i].gateway}) for i in final]
        # The statuses are read before settling: the worker writes "awaiting receipt", then
        # "sent". Read after a settle that found nothing awaited, they could already say
        # "sent" — the worker's marks landing in between — and a receipt its delivery now
        # awaits would pass for a repeat and be dropped.
        before = await store.receipts.statuses_of([str(found[i]) for i in final]) if final else []
        settled = await settle_receipts(self.receipts, "sms", finals)
        self.settled += sum(settled)
        for i, used, status in zip(final, settled, before, strict=True):
            # not settled: a repeat or past its timeout is done; one still being marked is held
            done[i] = used or status not in IN_PROGRESS
        return done

    async def close(self) -> None:
        """Ends the settling task by a flag: a cancellation that lands inside a Redis call can
        come back as a connection error, which the loop survives by design."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=5.0)
            self._task.cancel()
