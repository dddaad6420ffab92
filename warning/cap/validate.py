"""Validate CAP: the official OASIS schema, then what the schema cannot check.

Errors make a message unusable (an open polygon, a malformed reference, a time
without an offset, a restricted message without its restriction). Warnings are content
a careful ingest notices but can still read (an empty <references/>, an Update that
names nothing it updates).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any
from xml.etree.ElementTree import Element

import xmlschema

from warning.cap.parse import NS_11, NS_12, CapParseError, parse_cap

_OFFSET = re.compile(r"(?:[+-]\d\d:\d\d)$")


@dataclass
class Verdict:
    valid: bool
    version: str | None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    root: Element | None = None

    def as_json(self, file: str) -> dict[str, Any]:
        return {"file": file, "valid": self.valid, "version": self.version, "errors": self.errors,
                "warnings": self.warnings}


@cache
def schema(version: str) -> xmlschema.XMLSchema:
    """The official schema shipped in the package (loaded once, on first use)."""
    name = "cap12.xsd" if version == "1.2" else "cap11.xsd"
    with resources.as_file(resources.files("warning.cap.schema").joinpath(name)) as path:
        return xmlschema.XMLSchema(str(path))


def _texts(root: Element, ns: str, path: str) -> list[str]:
    return [(el.text or "").strip() for el in root.iterfind(path.replace("cap:", f"{{{ns}}}"))]


def _check_time(value: str, where: str, errors: list[str]) -> None:
    if not _OFFSET.search(value):
        errors.append(f"{where}: {value!r} has no UTC offset (CAP times are like 2026-07-01T08:00:00+08:00)")
        return
    try:
        datetime.fromisoformat(value)
    except ValueError:
        errors.append(f"{where}: {value!r} is not a valid date-time")


def _check_polygon(text: str, where: str, errors: list[str]) -> None:
    points = text.split()
    try:
        pairs = [tuple(float(v) for v in p.split(",")) for p in points]
    except ValueError:
        errors.append(f"{where}: points must be 'lat,lon' pairs separated by spaces")
        return
    if any(len(p) != 2 or not (-90 <= p[0] <= 90 and -180 <= p[1] <= 180) for p in pairs):
        errors.append(f"{where}: every point must be a 'lat,lon' pair within range")
    elif len(pairs) < 4:
        errors.append(f"{where}: a polygon needs at least 4 points (the first repeated last), got {len(pairs)}")
    elif pairs[0] != pairs[-1]:
        errors.append(f"{where}: polygon is not closed (first point {points[0]} != last {points[-1]})")


def _check_circle(text: str, where: str, errors: list[str]) -> None:
    try:
        centre, radius = text.split()
        lat, lon = (float(v) for v in centre.split(","))
        ok = -90 <= lat <= 90 and -180 <= lon <= 180 and float(radius) >= 0
    except ValueError:
        ok = False
    if not ok:
        errors.append(f"{where}: expected 'lat,lon radius_km', got {text!r}")


def semantic_check(root: Element, version: str) -> tuple[list[str], list[str]]:
    ns = NS_12 if version == "1.2" else NS_11
    errors: list[str] = []
    warnings: list[str] = []
    for name in ("sent",):
        for value in _texts(root, ns, f"cap:{name}"):
            _check_time(value, name, errors)
    for i, info in enumerate(root.iterfind(f"{{{ns}}}info")):
        for name in ("effective", "onset", "expires"):
            for value in _texts(info, ns, f"cap:{name}"):
                _check_time(value, f"info[{i}].{name}", errors)
        for j, area in enumerate(info.iterfind(f"{{{ns}}}area")):
            for k, poly in enumerate(_texts(area, ns, "cap:polygon")):
                if poly:
                    _check_polygon(poly, f"info[{i}].area[{j}].polygon[{k}]", errors)
                else:
                    warnings.append(f"info[{i}].area[{j}].polygon[{k}] is empty")
            for k, circle in enumerate(_texts(area, ns, "cap:circle")):
                _check_circle(circle, f"info[{i}].area[{j}].circle[{k}]", errors)
    scope = (_texts(root, ns, "cap:scope") or [""])[0]
    if scope == "Restricted" and not any(_texts(root, ns, "cap:restriction")):
        errors.append("scope is Restricted but <restriction> is missing or empty")
    if scope == "Private" and not any(_texts(root, ns, "cap:addresses")):
        errors.append("scope is Private but <addresses> is missing or empty")
    references = _texts(root, ns, "cap:references")
    for text in references:
        if not text:
            warnings.append("<references> is present but empty: it lists no earlier message")
        for triple in text.split():
            parts = triple.split(",")
            if len(parts) != 3 or not all(parts):
                errors.append(f"references: {triple!r} is not a 'sender,identifier,sent' triple")
            else:
                _check_time(parts[2], f"references {parts[1]}", errors)
    msg_type = (_texts(root, ns, "cap:msgType") or [""])[0]
    if msg_type in ("Update", "Cancel") and not any(references):
        warnings.append(f"msgType {msg_type} without references: it does not say which alert it changes")
    for name in ("restriction", "addresses"):
        if any(t == "" for t in _texts(root, ns, f"cap:{name}")):
            warnings.append(f"<{name}> is present but empty")
    return errors, warnings


def validate_cap(data: bytes) -> Verdict:
    try:
        root, version = parse_cap(data)
    except CapParseError as exc:
        return Verdict(valid=False, version=None, errors=[str(exc)])
    ns = "{" + (NS_12 if version == "1.2" else NS_11) + "}"
    errors = [f"schema: {(e.path or '').replace(ns, '')}: {e.reason}"
              for e in schema(version).iter_errors(root, use_location_hints=False)]
    semantic_errors, warnings = semantic_check(root, version)
    errors += semantic_errors
    return Verdict(valid=not errors, version=version, errors=errors, warnings=warnings, root=root)
