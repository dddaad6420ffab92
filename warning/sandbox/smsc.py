"""A local SMSC speaking SMPP 3.4 (server side, smpp34), with fault numbers like the Twilio
sandbox's, recording every message it takes in ``sms.jsonl`` (``provider: smpp``).

Binds are checked in front of smpp34's server (which accepts any bind): the first PDU of
a connection is read here, and a bind without the sandbox password is answered with
``ESME_RINVPASWD`` and closed; a good one is passed through to that server on a loopback port.

============ ==========================================================
…0011        ESME_RINVDSTADR (permanent: the next channel)
…0058        ESME_RTHROTTLED the first time for a number, then accepted
…0014        ESME_RMSGQFUL the first time for a number, then accepted
…0030        accepted, then a receipt stat:UNDELIV
…0031        accepted, then a receipt stat:EXPIRED
…0000        accepted, no receipt at all
…0099        accepted, the receipt 2 s later
============ ==========================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
import time
from typing import Any

import smpp34
import structlog
from pydantic import BaseModel

from warning.delivery.smpp import SANDBOX_SMPP_PASSWORD, TLV_MESSAGE_PAYLOAD, decode_text
from warning.sandbox.recorder import Recorder

log = structlog.get_logger()
BINDS = {0x00000001: "RX", 0x00000002: "TX", 0x00000009: "TRX"}
ESME_RINVPASWD, ESME_RINVDSTADR, ESME_RBINDFAIL = 0x0E, 0x0B, 0x0D
ESME_RSYSERR, ESME_RTHROTTLED, ESME_RMSGQFUL = 0x08, 0x58, 0x14


class SandboxSmsc:
    def __init__(self, recorder: Recorder, host: str, port: int, receipt_delay_s: float = 0.01) -> None:
        self.recorder = recorder
        self.host, self.port, self.inner_port = host, port, 0
        self.receipt_delay_s = receipt_delay_s
        self.sessions: dict[str, Any] = {}  # session id -> smpp34.Esme
        self.dropped: set[str] = set()
        self.failed_once: set[str] = set()
        self.counter = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: Any = None
        self._front: asyncio.Server | None = None

    async def start(self) -> None:
        with socket.socket() as probe:  # the pass-through server's port: any free one on loopback
            probe.bind(("127.0.0.1", 0))
            self.inner_port = probe.getsockname()[1]
        self._server = smpp34.Server(host="127.0.0.1", port=self.inner_port, system_id="SANDBOX")
        await self._server.start()
        self._front = await asyncio.start_server(self._accept, self.host, self.port)
        self._spawn(self._serve())
        log.info("sandbox_smsc_listening", port=self.port)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readexactly(16)
            length, command, _, sequence = struct.unpack(">IIII", head)
            body = await reader.readexactly(length - 16) if 16 < length < 4096 else b""
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        system_id, _, rest = body.partition(b"\0")
        password = rest.partition(b"\0")[0]
        refused = (ESME_RBINDFAIL if command not in BINDS else
                   ESME_RINVPASWD if password != SANDBOX_SMPP_PASSWORD.encode() else 0)
        self.recorder.record("smpp-binds", {"system_id": system_id.decode("latin-1"),
                                            "bind": BINDS.get(command, hex(command)), "status": refused})
        if refused:  # SMPP 3.4: a failed bind_resp has no body
            writer.write(struct.pack(">IIII", 16, command | 0x80000000, refused, sequence))
            await writer.drain()
            writer.close()
            return
        inner_reader, inner_writer = await asyncio.open_connection("127.0.0.1", self.inner_port)
        inner_writer.write(head + body)
        await asyncio.gather(_pump(reader, inner_writer), _pump(inner_reader, writer))

    async def _serve(self) -> None:
        while True:
            event = await self._server.next()
            if isinstance(event, smpp34.Esme):
                self.sessions[event.session_id] = event
            elif isinstance(event, smpp34.Unbound):
                self.sessions.pop(event.session_id, None)
            elif isinstance(event, smpp34.SubmitSmEvent):
                self._submit(event)

    def _submit(self, event: Any) -> None:
        to = "+" + event.destination_addr
        if event.session_id in self.dropped:
            event.reject(ESME_RSYSERR)
            return
        for suffix, status in (("0058", ESME_RTHROTTLED), ("0014", ESME_RMSGQFUL)):
            if to.endswith(suffix) and to not in self.failed_once:
                self.failed_once.add(to)
                event.reject(status)
                return
        if to.endswith("0011"):
            event.reject(ESME_RINVDSTADR)
            return
        message_id = f"{next(self.counter):010d}"
        event.accept(message_id=message_id)
        tlvs: dict[int, bytes] = {t.tag: t.value for t in event.tlvs}
        payload: bytes = tlvs.get(TLV_MESSAGE_PAYLOAD) or event.short_message
        esme = self.sessions.get(event.session_id)
        self.recorder.record("sms", {
            "provider": "smpp", "gateway": esme.system_id if esme else "", "message_id": message_id, "to": to,
            "body": decode_text(event.data_coding, payload), "data_coding": event.data_coding,
            "flash": bool(event.data_coding & 0x10) and event.data_coding & 0x03 == 0,
            "long": TLV_MESSAGE_PAYLOAD in tlvs, "registered_delivery": event.registered_delivery})
        if event.registered_delivery & 1 and not to.endswith("0000") and esme is not None:
            state = "UNDELIV" if to.endswith("0030") else "EXPIRED" if to.endswith("0031") else "DELIVRD"
            delay = 2.0 if to.endswith("0099") else self.receipt_delay_s
            self._spawn(self._receipt(esme.system_id, event.destination_addr, message_id, state, delay))

    async def _receipt(self, system_id: str, phone: str, message_id: str, state: str, delay: float) -> None:
        """As an SMSC does, a receipt goes to a bind of the same system_id, and waits for
        one (up to a minute) when the gateway's binds are down."""
        await asyncio.sleep(delay)
        stamp = time.strftime("%y%m%d%H%M")
        text = (f"id:{message_id} sub:001 dlvrd:{'001' if state == 'DELIVRD' else '000'} submit date:{stamp} "
                f"done date:{stamp} stat:{state} err:{'000' if state == 'DELIVRD' else '001'} text:")
        for _ in range(600):
            for session_id in self.sessions_of(system_id):
                if await self.deliver(session_id, text.encode(), source=phone):
                    return
            await asyncio.sleep(0.1)

    async def deliver(self, session_id: str, text: bytes, source: str = "8613800000000", esm_class: int = 0x04) -> bool:
        """Push a deliver_sm (a receipt, or anything a test wants the ESME to get)."""
        esme = self.sessions.get(session_id)
        if esme is None:
            return False
        with contextlib.suppress(Exception):
            return bool((await esme.deliver_sm(destination_addr="12379", source_addr=source, esm_class=esm_class,
                                               short_message=text)).is_success)
        return False

    def sessions_of(self, system_id: str) -> list[str]:
        return [sid for sid, esme in self.sessions.items() if esme.system_id == system_id and sid not in self.dropped]

    async def drop(self, system_id: str) -> int:
        """The SMSC ends the gateway's binds (unbind): what it already answered stays taken,
        anything after is refused, so the ESME must rebind and retry."""
        sessions = self.sessions_of(system_id)
        self.dropped.update(sessions)
        for sid in sessions:
            with contextlib.suppress(Exception):
                await self.sessions[sid].unbind()
        self.recorder.record("smpp-binds", {"system_id": system_id, "dropped": len(sessions)})
        return len(sessions)

    async def stop(self) -> None:
        if self._front is not None:
            self._front.close()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.stop()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


class Deliver(BaseModel):
    system_id: str
    text: str
    esm_class: int = 0x04


def router(smsc: SandboxSmsc) -> Any:
    """Test controls: drop a gateway's binds mid-run, push a deliver_sm of one's own."""
    from fastapi import APIRouter, HTTPException

    api = APIRouter(prefix="/smsc", tags=["sandbox"])

    @api.post("/drop/{system_id}")
    async def drop(system_id: str) -> dict[str, int]:
        return {"dropped": await smsc.drop(system_id)}

    @api.post("/deliver")
    async def deliver(body: Deliver) -> dict[str, int]:
        sessions = smsc.sessions_of(body.system_id)
        if not sessions:
            raise HTTPException(404, f"no bind of {body.system_id}")
        return {"delivered": int(await smsc.deliver(sessions[0], body.text.encode(), esm_class=body.esm_class))}

    @api.get("/binds")
    async def binds() -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for sid, esme in smsc.sessions.items():
            if sid not in smsc.dropped:
                out.setdefault(esme.system_id, []).append(sid)
        return out

    return api
