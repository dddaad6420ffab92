"""SMS text: encoding, segment count, fitting a warning into a few segments, reading replies.

Pure. A message that is all GSM-7 travels 160 characters a segment (153 when split);
one non-GSM character (any Chinese) makes the whole message UCS-2: 70 a segment, 67
when split, counted in UTF-16 code units. Carriers bill and deliver per segment, and
long concatenations arrive out of order on some handsets, so warnings are kept short.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")  # two septets each (escape + character)

ELLIPSIS = "…"


@dataclass(frozen=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    count: int


def is_gsm7(text: str) -> bool:
    return all(ch in _GSM7 or ch in _GSM7_EXTENSION for ch in text)


def segments(text: str) -> Segments:
    if is_gsm7(text):
        units = sum(2 if ch in _GSM7_EXTENSION else 1 for ch in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    count = 1 if units <= single else math.ceil(units / multi)
    return Segments(encoding, units, count)


_TAIL = re.compile(r"(回复1确认|Reply 1 to confirm|编号|Ref )")


def fit(text: str, max_segments: int) -> str:
    """The text within ``max_segments``: the head is shortened (with an ellipsis), never the
    tail with the reply instruction and reference a reply is matched by."""
    if segments(text).count <= max_segments:
        return text
    match = _TAIL.search(text)
    cut = match.start() if match else len(text)
    head, tail = text[:cut], text[cut:]
    lo, hi = 0, len(head)
    while lo < hi:  # the longest head that still fits
        mid = (lo + hi + 1) // 2
        if segments(head[:mid] + ELLIPSIS + tail).count <= max_segments:
            lo = mid
        else:
            hi = mid - 1
    if lo == 0 and segments(ELLIPSIS + tail).count > max_segments:
        return fit_hard(text, max_segments)
    return head[:lo] + ELLIPSIS + tail


def fit_hard(text: str, max_segments: int) -> str:
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if segments(text[:mid] + ELLIPSIS).count <= max_segments:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + ELLIPSIS


# --- replies ----------------------------------------------------------------------------

ACK_WORDS = frozenset({"1", "收到", "确认", "ack", "ok", "yes", "y", "已收到", "收到了"})
APPROVE_WORDS = frozenset({"批准", "同意发布", "approve"})  # an officer's approval needs the reference
_REPLY = re.compile(r"^\s*(?P<word>[^\s#:：,，.。!！]+)[\s#:：,，.。!！]*(?P<ref>[A-Za-z0-9_-]{4,})?[\s.。!！]*$")


@dataclass(frozen=True)
class Reply:
    ack: bool
    ref: str | None = None  # the reference quoted, if any
    approve: bool = False  # "批准 7KQ2Mv2" / "APPROVE 7KQ2Mv2": release the quoted version

def parse_reply(body: str) -> Reply:
    """``1``, ``收到``, ``ACK``, ``ack 05Zv2`` … acknowledge; ``批准 05Zv2`` / ``APPROVE 05Zv2``
    approve (only with the reference: an approval names what it releases); anything else is
    neither."""
    match = _REPLY.match(body or "")
    if not match:
        return Reply(False)
    word, ref = match.group("word").casefold(), match.group("ref")
    return Reply(word in ACK_WORDS, ref, approve=word in APPROVE_WORDS and ref is not None)
