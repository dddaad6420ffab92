"""SMPP delivery receipts (``deliver_sm`` with the receipt bit) -> the delivery's receipt.

The SMSC's message id names the delivery through the key the submit wrote. A receipt can
overtake that write, or the worker's "awaiting receipt" mark that follows the batch, so
one that finds nothing yet is held and tried again for ``hold_s`` before it is logged as
unmatched. The SMPP-level ack is sent by smpp34 as soon as the PDU arrives: a receipt
that cannot be read is logged with its reason, and its delivery is settled later by the
receipt timeout (the next channel), never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any

import structlog

from warning.delivery.fallback import settle_receipt
from warning.delivery.receipts import Receipts
from warning.delivery.smpp import ESM_DELIVERY_RECEIPT, Receipt, ReceiptError, parse_receipt
from warning.logs import mask_phone

log = structlog.get_logger()
IN_PROGRESS = frozenset({"queued", "sending"})  # a receipt for these is early: the worker is still marking


class SmppReceipts:
    def __init__(self, receipts: Receipts, hold_s: float = 30.0) -> None:
        self.receipts = receipts
        self.hold_s = hold_s
        self._held: deque[tuple[float, str, Receipt]] = deque()
        self._retry: asyncio.Task[None] | None = None
        self.settled = 0
        self.unmatched = 0
        self.malformed = 0

    async def __call__(self, gateway: str, event: Any) -> None:
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
        if not await self._apply(gateway, receipt):
            self._held.append((time.monotonic() + self.hold_s, gateway, receipt))
            if self._retry is None or self._retry.done():
                self._retry = asyncio.create_task(self._retry_held())

    async def _apply(self, gateway: str, receipt: Receipt) -> bool:
        """True once the receipt is used (or needs nothing more); False to hold it."""
        store = self.receipts.store
        found = await store.redis.get(store.keys.smpp_message(gateway, receipt.message_id))
        if found is None:
            return False
        delivery_id = str(found)
        status = receipt.final_status
        if status is None:  # ENROUTE, ACCEPTD: noted on the receipt, nothing settles
            await store.redis.hset(store.keys.delivery(delivery_id), f"provider_{receipt.state.lower()}_at",
                                   time.time())
            return True
        reason = f"smpp {receipt.state} err:{receipt.error}" if receipt.error else f"smpp {receipt.state}"
        if await settle_receipt(self.receipts, "sms", delivery_id, status, reason, provider_status=receipt.state,
                                gateway=gateway, message_id=receipt.message_id):
            self.settled += 1
            log.info("smpp_receipt", delivery_id=delivery_id, gateway=gateway, state=receipt.state)
            return True
        current = await store.redis.hget(store.keys.delivery(delivery_id), "status")
        return current not in IN_PROGRESS  # settled already (a repeat) or past its timeout: done

    async def _retry_held(self) -> None:
        while self._held:
            await asyncio.sleep(0.2)
            for _ in range(len(self._held)):
                deadline, gateway, receipt = self._held.popleft()
                if await self._apply(gateway, receipt):
                    continue
                if time.monotonic() < deadline:
                    self._held.append((deadline, gateway, receipt))
                    continue
                self.unmatched += 1
                log.warning("smpp_receipt_unmatched", gateway=gateway, message_id=receipt.message_id,
                            state=receipt.state, reason=f"no delivery of ours has this message id after "
                                                        f"{self.hold_s:.0f}s")

    async def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry
