"""`warning recipients import`: CSV or JSONL into the Redis directory, in pipelined batches.

Every line is validated on its own: a bad line is reported with its number and reason
and the rest still load. ``op`` (``upsert``, the default, or ``remove``) per line; an
upsert that moves someone to another grid or role removes the old index entry.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import redis
from pydantic import ValidationError

from warning.keys import Keys
from warning.targeting.directory import Person
from warning.targeting.grids import GridRegistry
from warning.targeting.recipients import record_of, resident_stub

BATCH = 5000
_LIST_FIELDS = ("channels", "grids")
_BOOL_TRUE = {"1", "true", "yes", "y"}


@dataclass
class ImportReport:
    upserted: int = 0
    removed: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"upserted": self.upserted, "removed": self.removed, "errors": len(self.errors),
                "first_errors": [{"line": n, "reason": r} for n, r in self.errors[:20]]}


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(line number, fields or None, reason when None) for every non-empty line."""
    with path.open("rb") as raw:
        head = raw.read(1)
    if path.suffix.lower() == ".csv" or (head and head not in (b"{", b"[")):
        with path.open(newline="", encoding="utf-8-sig") as text:
            reader = csv.DictReader(text)
            for row in reader:
                fields: dict[str, Any] = {k: v for k, v in row.items() if k and v not in (None, "")}
                for name in _LIST_FIELDS:
                    if name in fields:
                        fields[name] = [p for p in str(fields[name]).split("|") if p]
                if "opted_in" in fields:
                    fields["opted_in"] = str(fields["opted_in"]).strip().lower() in _BOOL_TRUE
                yield reader.line_num, fields, ""
        return
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield number, None, f"not valid JSON: {exc}"
                continue
            if not isinstance(value, dict):
                yield number, None, "expected a JSON object"
                continue
            yield number, value, ""


def _index_keys(keys: Keys, role: str, grids: list[str]) -> list[str]:
    if role == "officer":
        return [keys.officers]
    if role == "resident":
        return [k for g in grids for k in (keys.residents(g), keys.residents_opted(g))]
    return [keys.workers(g) for g in grids]


def _where(person: Person) -> tuple[str, list[str]]:
    if person.role == "resident":
        return "resident", [person.grid or ""]
    return person.role, list(person.grids)


Pending = tuple[str, Person | None, str, int]  # id, person (None: remove), op, line number


def _flush(client: redis.Redis, keys: Keys, batch: list[Pending], report: ImportReport) -> None:
    ids = [pid for pid, _, _, _ in batch]
    previous = client.hmget(keys.people, ids)
    pipe = client.pipeline(transaction=False)
    for (pid, person, op, number), before in zip(batch, previous, strict=True):
        if before:  # drop the old index entries (a move, a role change or a removal)
            old_role, _, old_grids = (before.decode() if isinstance(before, bytes) else before).partition(" ")
            for key in _index_keys(keys, old_role, old_grids.split(",") if old_grids else []):
                pipe.hdel(key, pid)
        if op == "remove":
            pipe.hdel(keys.people, pid)
            report.removed += 1
            continue
        assert person is not None
        role, grids = _where(person)
        if role == "resident":
            stub = resident_stub(person)
            if stub is None:
                report.errors.append((number, "no channel with an address (phone for sms, push_token for push)"))
                continue
            pipe.hset(keys.residents(grids[0]), pid, stub)
            if person.opted_in:
                pipe.hset(keys.residents_opted(grids[0]), pid, stub)
        else:
            record = record_of(person)
            for key in _index_keys(keys, role, grids):
                pipe.hset(key, pid, record)
        pipe.hset(keys.people, pid, f"{role} {','.join(grids)}")
        report.upserted += 1
    pipe.execute()


def import_recipients(client: redis.Redis, keys: Keys, path: Path,
                      progress: Callable[[int], None] | None = None) -> ImportReport:
    report = ImportReport()
    batch: list[Pending] = []
    for number, fields, reason in _rows(path):
        if fields is None:
            report.errors.append((number, reason))
            continue
        op = str(fields.pop("op", "upsert")).lower()
        if op not in ("upsert", "remove"):
            report.errors.append((number, f"op must be upsert or remove, got {op!r}"))
            continue
        if op == "remove":
            if not fields.get("id"):
                report.errors.append((number, "remove needs an id"))
                continue
            batch.append((str(fields["id"]), None, "remove", number))
        else:
            try:
                person = Person.model_validate(fields)
            except ValidationError as exc:
                detail = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}"
                                   for e in exc.errors())
                report.errors.append((number, detail))
                continue
            batch.append((person.id, person, "upsert", number))
        if len(batch) >= BATCH:
            _flush(client, keys, batch, report)
            if progress:
                progress(len(batch))
            batch = []
    if batch:
        _flush(client, keys, batch, report)
        if progress:
            progress(len(batch))
    return report


def seed_demo_directory(client: redis.Redis, keys: Keys) -> bool:
    """Load the bundled demo people and grids into an empty namespace; True if it did."""
    if client.hlen(keys.people) or client.exists(keys.grids):
        return False
    data = resources.files("warning.data")
    with resources.as_file(data.joinpath("demo-people.jsonl")) as people:
        report = import_recipients(client, keys, people)
    if report.errors:
        raise ValueError(f"bundled demo-people.jsonl: {report.errors[:3]}")
    store_grids(client, keys, data.joinpath("demo-grids.geojson").read_bytes(), "demo-grids.geojson")
    return True


def store_grids(client: redis.Redis, keys: Keys, geojson: bytes, source: str) -> int:
    """Validate and replace the grid registry (workers reload it on their next alert)."""
    registry = GridRegistry.from_geojson(geojson, source)
    pipe = client.pipeline(transaction=True)
    pipe.set(keys.grids, geojson)
    pipe.incr(keys.grids_version)
    pipe.execute()
    return len(registry.grids)


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))



