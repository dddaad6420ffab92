"""SMS through the carriers' SMPP 3.4 gateways (smpp34: a Rust core, windowing and
enquire_link timers included, behind an asyncio API).

Each gateway has one transceiver bind per consumer, kept up by a task that rebinds with
backoff (a refused or lost bind is logged with its reason and retried; the jobs meanwhile
fail as retryable and wait in the delayed set). A number goes to the gateway of its 号段;
each gateway paces itself with its own shared token bucket. ``submit_sm`` asks for a
delivery receipt and carries a validity period that ends with the alert; red (the
configured flash tiers) goes as flash SMS. Receipts (``deliver_sm``) are matched to
deliveries through the SMSC's message id kept in Redis, and settle them as Twilio's
callbacks do: delivered, or undelivered and on to the recipient's next channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import smpp34
import structlog

from consumers.channels.smpp_receipts import SmppReceipts
from consumers.notifier import Result, delivered, permanent, retryable
from warning.delivery.smpp import (
    TLV_MESSAGE_PAYLOAD,
    Endpoint,
    Gateway,
    SmppConfig,
    encode_text,
    submit_outcome,
    validity_period,
)
from warning.keys import RETENTION_S
from warning.logs import mask_phone
from warning.models import DeliveryJob
from warning.store import DeliveryStore
from warning.targeting.sms import fit

log = structlog.get_logger()
INBOUND = 20_000  # receipts smpp34 holds for our reader before it refuses the SMSC's (backpressure)
OnDeliver = Callable[[str, Any], Awaitable[None]]  # (gateway name, smpp34.DeliverSmEvent)


class GatewayDown(Exception):
    """The gateway has no bind right now (the reason says why)."""


class GatewaySession:
    """One gateway's bind, kept up in the background; ``bound()`` is the current one."""

    def __init__(self, gateway: Gateway, endpoint: Endpoint, on_deliver: OnDeliver, states: dict[str, int]) -> None:
        self.gateway = gateway
        self.endpoint = endpoint
        self.on_deliver = on_deliver
        self.states = states  # gateway -> 1 bound / 0 not, shared by the gateways (the heartbeat's)
        self.states[gateway.name] = 0
        self.reason = "not bound yet"
        self.binds = 0
        self._smsc: Any = None
        self._client: Any = None
        self._closing = False
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._keep_bound(), name=f"smpp-{self.gateway.name}")

    async def bound(self, wait_s: float = 0.0) -> Any:
        if self._smsc is None and wait_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), wait_s)
        if self._smsc is None:
            raise GatewayDown(f"gateway {self.gateway.name} not bound: {self.reason}")
        return self._smsc

    async def _keep_bound(self) -> None:
        g, delay = self.gateway, 1.0
        while not self._closing:
            client = smpp34.Client(host=self.endpoint.host, port=self.endpoint.port, system_id=g.system_id,
                                   password=self.endpoint.password, bind_type="TRX", system_type=g.system_type,
                                   window_size=g.window, connect_timeout_ms=int(g.connect_timeout_s * 1000),
                                   inbound_capacity=INBOUND)
            self._client = client
            try:
                smsc = await _within(client.connect(), g.connect_timeout_s + 2.0)
            except (smpp34.SmppError, OSError, TimeoutError) as exc:
                # smpp34 reports a bind the SMSC refused as "bind timed out" (it waits for a good resp)
                self.reason = f"bind failed: {exc}"
                log.error("smpp_bind_failed", gateway=g.name, host=self.endpoint.host, port=self.endpoint.port,
                          system_id=g.system_id, reason=str(exc), retry_in_s=delay,
                          hint="refused binds show as timeouts: check system_id and password")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            self.binds += 1
            self._smsc, delay = smsc, 1.0
            self.states[g.name] = 1
            self._ready.set()
            log.info("smpp_bound", gateway=g.name, system_id=g.system_id, binds=self.binds)
            await self._read(smsc)
            self._smsc = None
            self.states[g.name] = 0
            self._ready.clear()
            if self._closing:
                return
            self.reason = "bind lost"
            log.error("smpp_bind_lost", gateway=g.name, system_id=g.system_id, rebind_in_s=delay)
            with contextlib.suppress(Exception):
                await client.stop()
            await asyncio.sleep(delay)

    async def _read(self, smsc: Any) -> None:
        while True:
            event = await smsc.next()
            if isinstance(event, smpp34.Disconnected):
                return
            try:
                await self.on_deliver(self.gateway.name, event)
            except Exception:  # one bad receipt never stops the bind
                log.exception("smpp_deliver_failed", gateway=self.gateway.name)

    async def close(self) -> None:
        """Unbind, stop the client and end the keeper: smpp34's futures may ignore a
        cancellation, so the session is ended under them (a pending one would hold the
        event loop's shutdown forever)."""
        self._closing = True
        if self._smsc is not None:
            with contextlib.suppress(Exception):
                await _within(self._smsc.unbind(), 2.0)
        if self._client is not None:
            with contextlib.suppress(Exception):
                await _within(self._client.stop(), 2.0)
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=2.0)
            self._task.cancel()


async def _within(awaitable: Any, seconds: float) -> Any:
    """The result, or TimeoutError after ``seconds``; the call is abandoned, not awaited
    (smpp34's futures run in its Rust core and may not answer a cancellation)."""
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        raise TimeoutError(f"no answer within {seconds:.0f}s")
    return task.result()


class SmppSms:
    channel = "sms"

    def __init__(self, config: SmppConfig, endpoints: dict[str, Endpoint], store: DeliveryStore,
                 receipts: SmppReceipts, max_segments: int = 4) -> None:
        self.config = config
        self.store = store
        self.receipts = receipts
        self.max_segments = max_segments
        self.states: dict[str, int] = {}  # what each gateway's bind is now, for the consumer's heartbeat
        self.sessions = {g.name: GatewaySession(g, endpoints[g.name], receipts, self.states)
                         for g in config.gateways}

    async def start(self) -> None:
        for session in self.sessions.values():
            session.start()

    async def send_batch(self, jobs: Sequence[DeliveryJob]) -> list[Result]:
        await self.start()
        by_gateway: dict[str, list[int]] = {}
        for i, job in enumerate(jobs):
            by_gateway.setdefault(self.config.route(job.address), []).append(i)
        results: list[Result] = [retryable("not sent")] * len(jobs)
        await asyncio.gather(*(self._gateway_batch(name, [jobs[i] for i in idx], idx, results)
                               for name, idx in by_gateway.items()))
        return results

    async def _gateway_batch(self, name: str, jobs: list[DeliveryJob], idx: list[int], results: list[Result]) -> None:
        session = self.sessions[name]
        gateway = session.gateway
        try:
            smsc = await session.bound(wait_s=gateway.connect_timeout_s + 1.0)
        except GatewayDown as exc:
            for i in idx:
                results[i] = retryable(str(exc))
            return
        slots = asyncio.Semaphore(gateway.window)

        async def one(i: int, job: DeliveryJob, taken: list[tuple[DeliveryJob, str]]) -> None:
            async with slots:
                results[i] = await self._submit(smsc, gateway, job, taken)

        pending = list(zip(idx, jobs, strict=True))
        while pending:  # as many as the gateway's shared bucket allows now, then the rest
            granted, wait = await self.store.rates.take_tokens(f"smpp:{name}", len(pending), gateway.rate_per_s,
                                                         max(gateway.rate_per_s, 1.0))
            if not granted:
                await asyncio.sleep(max(wait, 0.001))
                continue
            now, pending = pending[:granted], pending[granted:]
            taken: list[tuple[DeliveryJob, str]] = []
            await asyncio.gather(*(one(i, job, taken) for i, job in now))
            await self._remember(name, taken)

    async def _remember(self, gateway: str, taken: list[tuple[DeliveryJob, str]]) -> None:
        """The receipt's key: the SMSC's message id -> our delivery id."""
        if not taken:
            return
        async with self.store.redis.pipeline(transaction=False) as pipe:
            for job, message_id in taken:
                ttl = int(max(job.expires - time.time(), 0) + RETENTION_S)
                pipe.set(self.store.keys.smpp_message(gateway, message_id), job.delivery_id, ex=ttl)
            await pipe.execute()

    async def _submit(self, smsc: Any, gateway: Gateway, job: DeliveryJob,
                      taken: list[tuple[DeliveryJob, str]]) -> Result:
        left = job.expires - time.time()
        if left < 1:
            return permanent("alert expired before the SMSC could take it")
        text = encode_text(fit(job.text, self.max_segments), flash=job.tier in self.config.flash_tiers)
        tlvs = [smpp34.Tlv(TLV_MESSAGE_PAYLOAD, text.payload)] if text.payload is not None else []
        try:
            resp = await _within(smsc.submit_sm(
                destination_addr=job.address.lstrip("+"), short_message=text.short_message,
                source_addr=self.config.source_addr, source_addr_ton=self.config.source_addr_ton,
                source_addr_npi=self.config.source_addr_npi, dest_addr_ton=1, dest_addr_npi=1,
                registered_delivery=1, data_coding=text.data_coding, validity_period=validity_period(left),
                tlvs=tlvs), gateway.submit_timeout_s)
        except (smpp34.SmppError, OSError, RuntimeError, TimeoutError) as exc:
            return retryable(f"gateway {gateway.name}: {exc}")
        if not resp.is_success or not resp.message_id:
            again, reason = submit_outcome(resp.command_status)
            log.warning("smpp_submit_refused", delivery_id=job.delivery_id, alert_id=job.alert_id,
                        gateway=gateway.name, to=mask_phone(job.address), reason=reason, retryable=again)
            return retryable(reason) if again else permanent(reason)
        taken.append((job, resp.message_id))
        return delivered(provider_id=f"{gateway.name}:{resp.message_id}", awaits_receipt=True)

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.sessions.values()))
        await self.receipts.close()
