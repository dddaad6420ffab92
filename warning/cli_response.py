"""`warning` commands of the response side: acknowledgements, escalation, tokens, reports."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from warning import heap
from warning.cli_support import console, load_container, print_json

tokens_app = typer.Typer(no_args_is_help=True, help="API tokens (stored hashed).")


ARCHIVE_EVERY_S = 30.0


def escalator() -> None:
    """Run an escalation worker: fires due steps once (any number may run), notifies, publishes."""
    from warning.delivery.receipts import KafkaReceiptLog
    from warning.heartbeat import beating
    from warning.response.escalator import Escalator
    from warning.response.history import archive_due

    c = load_container(serving="escalator")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        events = KafkaReceiptLog(c.settings.kafka_bootstrap, c.topics.acks)

        async def publish(event: dict[str, Any]) -> None:
            await events.emit([event])

        await events.start()
        worker = Escalator(c, publish)
        heap.settle(c.settings.gc_threshold)
        archived_at = 0.0
        try:
            async with beating(c.redis, c.keys, c.pulse):
                while not stop.is_set():
                    try:
                        await worker.tick(time.time())
                        c.pulse.took_work()
                        if time.monotonic() - archived_at >= ARCHIVE_EVERY_S:  # closed alerts into the history
                            archived_at = time.monotonic()
                            await archive_due(c, time.time())
                    except Exception:  # Redis restarting: the timers are durable, try again shortly
                        import structlog

                        structlog.get_logger().exception("escalator_tick_failed")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.5)
        finally:
            await events.close()
            await c.redis.aclose()

    asyncio.run(main())



@tokens_app.command("create")
def tokens_create(
        role: Annotated[str, typer.Option(help="publisher | grid_worker | officer | issuer | admin")],
        id: Annotated[str, typer.Option("--id", help="who: the officer's / grid worker's id in the directory")],
        area: Annotated[str, typer.Option(help="officer, issuer: jurisdiction area code; grid worker: grid ids, "
                                               "comma-separated")] = "",
        level: Annotated[str, typer.Option(help="officer: township | district | city | province")] = "") -> None:
    """Issue a token; it is printed once and only its hash is kept."""
    from pydantic import ValidationError

    from warning.response.tokens import Principal, TokenStore

    try:
        principal = Principal.model_validate({"id": id, "role": role, "area": area, "level": level})
    except ValidationError as exc:
        console.print(f"error: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
        raise typer.Exit(2) from exc
    if role == "officer" and not (area and level):
        console.print("error: an officer token needs --area (jurisdiction) and --level")
        raise typer.Exit(2)
    if role == "issuer" and not area:
        console.print("error: an issuer token needs --area (the jurisdiction it may issue for)")
        raise typer.Exit(2)
    c = load_container(logging=False)

    async def go() -> str:
        try:
            return await TokenStore(c.redis, c.keys).create(principal)
        finally:
            await c.redis.aclose()

    print_json({"token": asyncio.run(go()), **principal.model_dump()})


@tokens_app.command("list")
def tokens_list() -> None:
    """Who holds a token (hash prefixes, never tokens)."""
    from warning.response.tokens import TokenStore

    c = load_container(logging=False)

    async def go() -> list[tuple[str, Any]]:
        try:
            return await TokenStore(c.redis, c.keys).list()
        finally:
            await c.redis.aclose()

    print_json([{"hash_prefix": h, **p.model_dump()} for h, p in asyncio.run(go())])


@tokens_app.command("revoke")
def tokens_revoke(hash_prefix: str) -> None:
    """Revoke by the hash prefix `tokens list` shows (at least 8 characters)."""
    from warning.response.tokens import TokenStore

    c = load_container(logging=False)

    async def go() -> int:
        try:
            return await TokenStore(c.redis, c.keys).revoke(hash_prefix)
        finally:
            await c.redis.aclose()

    print_json({"revoked": asyncio.run(go())})


def report(alert_id: str) -> None:
    """The after-action report of an alert (JSON): reach per channel, time to ack, escalation, grids, feedback."""
    from warning.response.report import after_action_report

    c = load_container(logging=False)

    async def go() -> dict[str, Any] | None:
        try:
            return await after_action_report(c, alert_id)
        finally:
            await c.redis.aclose()

    result = asyncio.run(go())
    if result is None:
        console.print(f"error: no alert {alert_id!r}")
        raise typer.Exit(1)
    print_json(result)


def ack(alert_id: str, by: Annotated[str, typer.Option("--by", help="officer or grid worker id")]) -> None:
    """Acknowledge an alert (recorded in Redis and on warning.acks)."""
    from warning.feeds import producer
    from warning.models import Ack
    from warning.response.ack import UnknownAlert, acknowledge

    c = load_container(logging=False)
    record = Ack(alert_id=alert_id, by=by, at=datetime.now(UTC), via="cli")
    try:
        outcome = asyncio.run(acknowledge(c.redis, c.keys, record))
    except UnknownAlert as exc:
        console.print(f"error: {exc}")
        raise typer.Exit(1) from exc
    first = outcome.first
    if first:
        prod = producer(c.settings)
        prod.send(c.topics.acks, key=alert_id.encode(), value=outcome.ack.model_dump_json().encode())
        prod.flush()
        prod.close()
    print_json({"alert_id": alert_id, "by": by, "recorded": first})
