"""Parse CAP bytes without ever resolving anything outside the message.

defusedxml refuses any DTD (and so every entity, external or not) before a byte of it
is acted on; XInclude is never processed and its elements are refused; schema location
hints are never followed. Encodings declared in the prolog that expat cannot read
natively (GB2312, GBK, GB18030, Big5…) are decoded by Python first.
"""

from __future__ import annotations

import codecs
import re
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

NS_12 = "urn:oasis:names:tc:emergency:cap:1.2"
NS_11 = "urn:oasis:names:tc:emergency:cap:1.1"
VERSIONS = {NS_12: "1.2", NS_11: "1.1"}
XINCLUDE_NS = "http://www.w3.org/2001/XInclude"
MAX_CAP_BYTES = 1024 * 1024
_PROLOG = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"'][^>]*\?>")
_EXPAT_NATIVE = {"utf-8", "utf-16", "iso8859-1", "ascii"}


class CapParseError(ValueError):
    """The bytes are not a CAP message we are willing to read; says why."""


def _normalise_encoding(data: bytes) -> bytes:
    match = _PROLOG.match(data)
    if not match:
        return data
    declared = match.group(1).decode("ascii")
    try:
        codec = codecs.lookup(declared).name
    except LookupError as exc:
        raise CapParseError(f"unknown encoding {declared!r} declared in the XML prolog") from exc
    if codec in _EXPAT_NATIVE:
        return data
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        raise CapParseError(f"bytes are not valid {declared}: {exc}") from exc
    prolog = match.group(0).decode(codec)
    rewritten = re.sub(r"encoding\s*=\s*[\"'][^\"']+[\"']", 'encoding="utf-8"', prolog, count=1)
    return (rewritten + text[len(prolog):]).encode("utf-8")


def parse_cap(data: bytes) -> tuple[Element, str]:
    """The root element and CAP version ("1.2" or "1.1"); CapParseError otherwise."""
    if len(data) > MAX_CAP_BYTES:
        raise CapParseError(f"message is {len(data)} bytes; the limit is {MAX_CAP_BYTES}")
    try:
        root = SafeET.fromstring(_normalise_encoding(data), forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except DefusedXmlException as exc:
        raise CapParseError(f"refused: {type(exc).__name__} ({exc}); CAP needs no DTD or entities") from exc
    except SafeET.ParseError as exc:
        raise CapParseError(f"not well-formed XML: {exc}") from exc
    namespace = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
    if root.tag.split("}")[-1] != "alert" or namespace not in VERSIONS:
        raise CapParseError(f"root element is {root.tag!r}, not a CAP 1.1 or 1.2 <alert>")
    if any(el.tag.startswith(f"{{{XINCLUDE_NS}}}") for el in root.iter()):
        raise CapParseError("refused: XInclude elements are not processed and not allowed in CAP")
    return root, VERSIONS[namespace]
