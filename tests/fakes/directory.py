"""An in-memory fake of the recipient directory (warning/targeting/recipients.py), held to
the same contract tests as the Redis original (tests/integration/test_store_contract.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from warning.targeting.directory import Person
from warning.targeting.recipients import record_of, resident_stub, without_in_record, without_in_stub


class FakeRecipientStore:
    """warning.targeting.recipients.RecipientStore in memory, filled by :meth:`add` as an
    import fills Redis (the same records and stubs, from the same helpers)."""

    def __init__(self) -> None:
        self.hashes: dict[tuple[str, str], dict[str, bytes]] = {}  # (index, grid or "") -> id -> value
        self.people: dict[str, tuple[str, list[str]]] = {}

    def add(self, person: Person) -> None:
        if person.role == "resident":
            grids = [person.grid or ""]
            stub = resident_stub(person)
            if stub is not None:
                self.hashes.setdefault(("residents", grids[0]), {})[person.id] = stub
                if person.opted_in:
                    self.hashes.setdefault(("opted", grids[0]), {})[person.id] = stub
        else:
            grids = list(person.grids)
            where = [("officers", "")] if person.role == "officer" else [("workers", g) for g in grids]
            for index in where:
                self.hashes.setdefault(index, {})[person.id] = record_of(person)
        self.people[person.id] = (person.role, grids)

    def _values(self, index: str, grid_ids: Iterable[str]) -> list[bytes]:
        return [v for g in grid_ids for v in self.hashes.get((index, g), {}).values()]

    async def resident_stubs(self, grid_ids: Iterable[str], opted_in_only: bool) -> list[bytes]:
        return self._values("opted" if opted_in_only else "residents", grid_ids)

    async def workers(self, grid_ids: Iterable[str]) -> list[dict[str, Any]]:
        return [orjson.loads(v) for v in self._values("workers", grid_ids)]

    async def officers(self) -> list[dict[str, Any]]:
        return [orjson.loads(v) for v in self._values("officers", [""])]

    async def staff(self, grid_ids: Iterable[str]) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
        ids = sorted(set(grid_ids))
        return {g: await self.workers([g]) for g in ids}, await self.officers()

    async def forget_address(self, person_id: str, channel: str, address: str) -> bool:
        if person_id not in self.people:
            return False
        role, grids = self.people[person_id]
        if role == "resident":
            indexes = [(i, g) for g in grids for i in ("residents", "opted")]
        else:
            indexes = [("officers", "")] if role == "officer" else [("workers", g) for g in grids]
        changed = False
        for index in indexes:
            current = self.hashes.get(index, {}).get(person_id)
            if current is None:
                continue
            updated = (without_in_stub(current, channel, address) if role == "resident"
                       else without_in_record(current, channel, address))
            if updated == current:
                continue
            changed = True
            if updated:
                self.hashes[index][person_id] = updated
            else:
                del self.hashes[index][person_id]
        return changed
