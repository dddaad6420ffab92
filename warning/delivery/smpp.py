"""SMPP 3.4 gateways (the carriers' SMS centres): configuration, routing and the PDU fields (pure).

The gateways file (`WARNING_SMPP_GATEWAYS_FILE`, else `warning/data/smpp-gateways.yaml`)
names each gateway (host, port, system_id, its password's env var or file, window, rate)
and the number ranges (号段) it carries; a number goes to the gateway with the longest
matching prefix, else to the default. Checked at startup: a bad file stops the process
naming the file and the field. No I/O here except reading that file and a password file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from warning.models import Tier
from warning.yamlfile import load_model

SANDBOX_SMPP_PASSWORD = "sandbox1"  # the sandbox SMSC's published test password (like Twilio's test token)

# SMPP 3.4 command_status values (section 5.1.3) that a later try can get past.
RETRYABLE_STATUS = {
    0x08: "ESME_RSYSERR system error",
    0x14: "ESME_RMSGQFUL message queue full",
    0x45: "ESME_RSUBMITFAIL submit failed",
    0x58: "ESME_RTHROTTLED throttling error",
    0x64: "ESME_RX_T_APPN temporary application error",
}
PERMANENT_STATUS = {
    0x01: "ESME_RINVMSGLEN invalid message length",
    0x0A: "ESME_RINVSRCADR invalid source address",
    0x0B: "ESME_RINVDSTADR invalid destination address",
    0x33: "ESME_RINVNUMDESTS invalid number of destinations",
    0x48: "ESME_RINVSRCTON invalid source address TON",
    0x50: "ESME_RINVDSTTON invalid destination address TON",
    0x62: "ESME_RINVEXPIRY invalid validity period",
    0x66: "ESME_RX_R_APPN permanent application error",
}
# Delivery receipt states (the "stat:" of the receipt text, or the message_state TLV).
RECEIPT_STATES = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 6: "ACCEPTD",
                  7: "UNKNOWN", 8: "REJECTD"}
FINAL_STATES = {"DELIVRD": "delivered", "UNDELIV": "undelivered", "EXPIRED": "undelivered",
                "REJECTD": "failed", "DELETED": "failed"}
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_MESSAGE_PAYLOAD = 0x0424
ESM_DELIVERY_RECEIPT = 0x04  # esm_class bit of a deliver_sm that is a receipt
MAX_SHORT_MESSAGE = 140  # octets in one SMS; a longer text travels in message_payload
MAX_VALIDITY = timedelta(days=7)


class SmppConfigError(ValueError):
    """A gateways file that cannot be used; names the file and the field."""


class Gateway(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9_-]{1,32}$")
    host: str = "127.0.0.1"
    port: int = Field(default=2775, ge=1, le=65535)
    system_id: str = Field(min_length=1, max_length=15)  # SMPP 3.4: at most 15 octets
    password_env: str | None = None  # the env var holding the password …
    password_file: Path | None = None  # … or a file (a mounted secret); neither: the sandbox's
    system_type: str = ""
    window: int = Field(default=10, ge=1, le=1000)  # submit_sm in flight before a response
    rate_per_s: float = Field(default=100.0, gt=0)  # this gateway's own token bucket
    prefixes: list[str] = Field(default_factory=list)  # E.164 prefixes (号段), e.g. "+86134"
    connect_timeout_s: float = Field(default=5.0, gt=0, le=120)
    # No submit_sm_resp this long: retried (at-least-once: the SMSC may have taken it)
    submit_timeout_s: float = Field(default=10.0, gt=0, le=120)

    def password(self, sandbox: bool) -> str:
        """From the env var or the file; the sandbox's published one when neither is set."""
        value = self._password(sandbox)
        if len(value.encode()) > 8:  # SMPP 3.4 5.2.1: a C-Octet-String of at most 9 with its NUL
            raise SmppConfigError(f"gateway {self.name}: the password is longer than SMPP 3.4's 8 octets")
        return value

    def _password(self, sandbox: bool) -> str:
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise SmppConfigError(f"gateway {self.name}: env {self.password_env} is not set")
            return value
        if self.password_file:
            try:
                return self.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SmppConfigError(f"gateway {self.name}: password_file {self.password_file}: "
                                      f"{exc.strerror}") from exc
        if not sandbox:
            raise SmppConfigError(f"gateway {self.name}: live SMPP needs password_env or password_file")
        return SANDBOX_SMPP_PASSWORD


class SmppConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source_addr: str = Field(default="12379", max_length=20)  # the sender number phones show
    source_addr_ton: int = Field(default=0, ge=0, le=6)
    source_addr_npi: int = Field(default=0, ge=0, le=18)
    flash_tiers: list[Tier] = Field(default_factory=lambda: [Tier.red])  # 闪信: shown without opening
    default: str  # the gateway for numbers no prefix matches
    gateways: list[Gateway] = Field(min_length=1)

    @model_validator(mode="after")
    def _names(self) -> SmppConfig:
        names = [g.name for g in self.gateways]
        if len(set(names)) != len(names):
            raise ValueError(f"gateway names must be unique: {names}")
        if self.default not in names:
            raise ValueError(f"default {self.default!r} is none of the gateways {names}")
        return self

    @cached_property
    def _by_prefix(self) -> list[tuple[str, str]]:
        return sorted(((p, g.name) for g in self.gateways for p in g.prefixes), key=lambda x: -len(x[0]))

    def route(self, number: str) -> str:
        """The gateway for a number: the longest prefix that matches, else the default."""
        return next((name for prefix, name in self._by_prefix if number.startswith(prefix)), self.default)

    def gateway(self, name: str) -> Gateway:
        return next(g for g in self.gateways if g.name == name)


def load_smpp_config(path: Path | None = None) -> SmppConfig:
    return load_model(SmppConfig, path, "smpp-gateways.yaml", "SMPP gateways", SmppConfigError)


@dataclass(frozen=True)
class Endpoint:
    """Where a gateway binds, with its password (the SMSC's, or the sandbox's)."""

    host: str
    port: int
    password: str


@dataclass(frozen=True)
class Encoded:
    data_coding: int
    short_message: bytes
    payload: bytes | None  # message_payload (TLV 0x0424) when the text is longer than one SMS


def encode_text(text: str, flash: bool) -> Encoded:
    """ASCII as the SMSC default alphabet, anything else (Chinese) as UCS-2; flash SMS is
    message class 0 (data_coding 0x10 / 0x18), which handsets show at once without saving."""
    if text.isascii():
        coding, body = 0x00, text.encode("ascii")
    else:
        coding, body = 0x08, text.encode("utf-16-be")
    if flash:
        coding |= 0x10
    if len(body) <= MAX_SHORT_MESSAGE:
        return Encoded(coding, body, None)
    return Encoded(coding, b"", body)


def decode_text(data_coding: int, body: bytes) -> str:
    """What a handset would show (the sandbox records it)."""
    if data_coding & 0x0F == 0x08:
        return body.decode("utf-16-be", errors="replace")
    return body.decode("latin-1")


def validity_period(seconds: float) -> str:
    """SMPP relative time "YYMMDDhhmmss000R" for the time left until the alert expires."""
    left = int(min(max(seconds, 60), MAX_VALIDITY.total_seconds()))
    days, rest = divmod(left, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"0000{days:02d}{hours:02d}{minutes:02d}{secs:02d}000R"


def submit_outcome(command_status: int) -> tuple[bool, str]:
    """(retryable, reason) of a refused submit_sm."""
    if command_status in RETRYABLE_STATUS:
        return True, f"smpp 0x{command_status:02X} {RETRYABLE_STATUS[command_status]}"
    name = PERMANENT_STATUS.get(command_status, "refused")
    return False, f"smpp 0x{command_status:02X} {name}"


class ReceiptError(ValueError):
    """A deliver_sm that claims to be a receipt but says no message id or state."""


@dataclass(frozen=True)
class Receipt:
    message_id: str
    state: str  # DELIVRD, UNDELIV, EXPIRED, …
    error: str = ""

    @property
    def reason(self) -> str:
        return f"smpp {self.state} err:{self.error}" if self.error else f"smpp {self.state}"

    @property
    def final_status(self) -> str | None:
        """Our receipt status, or None for an intermediate state (ENROUTE, ACCEPTD)."""
        return FINAL_STATES.get(self.state)


_RECEIPT_ID = re.compile(rb"\bid:(\S+)", re.IGNORECASE)
_RECEIPT_STAT = re.compile(rb"\bstat:(\w+)", re.IGNORECASE)
_RECEIPT_ERR = re.compile(rb"\berr:(\w+)", re.IGNORECASE)


def parse_receipt(text: bytes, tlvs: dict[int, bytes]) -> Receipt:
    """A delivery receipt from its TLVs (receipted_message_id, message_state) or, as most
    SMSCs send it, the text "id:… sub:… dlvrd:… submit date:… done date:… stat:… err:…"."""
    message_id = tlvs.get(TLV_RECEIPTED_MESSAGE_ID, b"").rstrip(b"\0").decode("ascii", "replace")
    state = RECEIPT_STATES.get(tlvs[TLV_MESSAGE_STATE][0], "") if tlvs.get(TLV_MESSAGE_STATE) else ""
    if not message_id and (found := _RECEIPT_ID.search(text)):
        message_id = found.group(1).decode("ascii", "replace")
    if not state and (found := _RECEIPT_STAT.search(text)):
        state = found.group(1).decode("ascii", "replace").upper()
    if not message_id or not state:
        raise ReceiptError(f"receipt without {'a message id' if not message_id else 'a state'}: "
                           f"{text[:80].decode('latin-1')!r}")
    err = _RECEIPT_ERR.search(text)
    return Receipt(message_id, state, err.group(1).decode("ascii", "replace") if err else "")

