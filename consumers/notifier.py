"""The Notifier protocol: hand jobs to a provider, say what happened to each.

Like Alertmanager's notifiers, a result says whether trying again could help.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from warning.models import DeliveryJob


class Outcome(StrEnum):
    delivered = "delivered"  # the provider has it
    retryable = "retryable"  # try again later (timeouts, 5xx, rate limited)
    permanent = "permanent"  # will never work (bad number, 4xx); next channel instead


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    reason: str = ""
    provider_id: str = ""
    awaits_receipt: bool = False  # the provider took it; its delivery receipt comes later (SMS)
    unregistered: bool = False  # the address is dead for good (push token): forget it


def delivered(provider_id: str = "", awaits_receipt: bool = False) -> Result:
    return Result(Outcome.delivered, provider_id=provider_id, awaits_receipt=awaits_receipt)


def retryable(reason: str) -> Result:
    return Result(Outcome.retryable, reason)


def permanent(reason: str, unregistered: bool = False) -> Result:
    return Result(Outcome.permanent, reason, unregistered=unregistered)


class Notifier(Protocol):
    channel: str

    async def send_batch(self, jobs: Sequence[DeliveryJob]) -> list[Result]:
        """One result per job, in order. Must not raise for a single job's failure."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class Reconciling(Protocol):
    """A provider that can be asked what it already took (by our delivery id).

    A consumer killed between a handoff and its "sent" mark leaves jobs in *sending*;
    whoever reclaims them asks first, so a batch the provider has is not sent twice.
    Providers that cannot be asked get those jobs again (at-least-once).
    """

    async def handed_off(self, jobs: Sequence[DeliveryJob]) -> set[str]:
        """The delivery ids among ``jobs`` the provider already has."""
        ...


@runtime_checkable
class Starting(Protocol):
    """A provider with sessions to open before the first job (SMPP binds): receipts for
    messages sent before a restart arrive as soon as the bind is up."""

    async def start(self) -> None: ...
