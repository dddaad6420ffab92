"""`warning alert issue|approve|reject|cancel|update` and `warning silence add|list|expire`.

The CLI is the operators' trusted tool (like `warning ack --by`): it acts as the officer of
the directory named by ``--by`` (their role, level and jurisdiction), publishes the command
on ``warning.control`` and prints the lifecycle's answer; exit 1 when it was refused.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from fastapi import HTTPException
from pydantic import ValidationError

from warning.cli_support import console, load_container, print_json

alert_app = typer.Typer(no_args_is_help=True, help="Issue, change, approve, reject and cancel warnings by hand.")
silence_app = typer.Typer(no_args_is_help=True, help="Silence sources (stations, rules, hazards, areas).")
By = Annotated[str, typer.Option("--by", help="the officer's id in the directory")]
Key = Annotated[str, typer.Option("--idempotency-key", help="retries with the same key get the first answer")]
Json = Annotated[bool, typer.Option("--json")]


async def _officer(c: Any, by: str) -> Any:
    """The directory's officer ``by`` as the command's actor (exit 2 if there is none)."""
    from warning.control.commands import Actor

    found = next((o for o in await c.recipients.officers() if o.get("id") == by), None)
    if found is None:
        await c.redis.aclose()
        console.print(f"error: {by!r} is not an officer of the directory (warning recipients import)")
        raise typer.Exit(2)
    return Actor(id=by, role="officer", level=found.get("level", ""), area=found.get("jurisdiction", ""), via="cli")


def _run(c: Any, op: str, by: str, alert_id: str, body: dict[str, Any], key: str, as_json: bool,
         kind: str = "") -> None:
    """Make the command (``kind``: manual or drill, for an issue), submit it, print the answer."""
    from warning.control.commands import Command, command_id
    from warning.control.replies import claim_alert_id
    from warning.control.submit import submit

    cid = command_id(by, op, "" if kind else alert_id, key) if key else uuid.uuid4().hex[:24]

    async def go() -> Any:
        actor = await _officer(c, by)
        try:
            if kind:  # a retry of the same issue reuses the first one's alert id
                target_id = await claim_alert_id(c.redis, c.keys, cid, alert_id)
                target: Any = f"{kind}:{target_id}"
            else:
                found = await c.store.alerts.summary(alert_id)
                target_id, target = alert_id, found.key if found else None
            if target is None:
                return None
            return await submit(c, Command(command_id=cid, op=op, alert_key=str(target),  # type: ignore[arg-type]
                                           alert_id=target_id, actor=actor, at=time.time(), body=body))
        finally:
            await c.redis.aclose()

    outcome = asyncio.run(go())
    if outcome is None:
        console.print(f"error: no alert {alert_id!r}, or no lifecycle worker answered within "
                      f"{c.settings.control_timeout_s:g} s (WARNING_CONTROL_TIMEOUT_S); is `warning worker` running?")
        raise typer.Exit(1)
    if as_json or outcome.status >= 400:
        print_json({"status": outcome.status, **outcome.body})
    else:
        console.print(f"{op}: {outcome.body}")
    if outcome.status >= 400:
        raise typer.Exit(1)


@alert_app.command("issue")
def alert_issue(hazard: Annotated[str, typer.Option()], tier: Annotated[str, typer.Option()],
                area: Annotated[list[str], typer.Option("--area", help="area code; repeat for several")], by: By,
                headline: Annotated[str, typer.Option(help="zh-CN headline (default: the standard wording)")] = "",
                instruction: Annotated[str, typer.Option(help="zh-CN instruction")] = "",
                expires_in: Annotated[float, typer.Option("--expires-in", help="seconds")] = 6 * 3600,
                audience: Annotated[list[str] | None, typer.Option(help="roles, repeatable")] = None,
                drill: Annotated[bool, typer.Option("--drill")] = False, key: Key = "", as_json: Json = False) -> None:
    """Issue a warning by hand (residents wait for a second officer under the default policy)."""
    from warning.control.commands import manual_alert_id
    from warning.control.requests import IssueRequest, check_issue

    c = load_container(logging=False)
    texts = {"zh-CN": {"headline": headline, "instruction": instruction}} if headline else None
    try:
        request = IssueRequest.model_validate({"hazard": hazard, "tier": tier, "areas": area, "texts": texts,
                                               "expires_in_s": expires_in, "audience": audience, "drill": drill})
        check_issue(request, c.pack, c.directory, c.grids, c.templates)
    except ValidationError as exc:
        console.print(f"error: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}")
        raise typer.Exit(2) from exc
    except HTTPException as exc:
        console.print(f"error: {exc.detail}")
        raise typer.Exit(2) from exc
    now = time.time()
    proposed = manual_alert_id(hazard, area[0], now, uuid.uuid4().hex, drill)
    _run(c, "issue", by, proposed, request.command_body(c.directory, now), key, as_json,
         kind="drill" if drill else "manual")


@alert_app.command("approve")
def alert_approve(alert_id: str, by: By, key: Key = "", as_json: Json = False) -> None:
    """Release the version waiting for approval (not your own draft)."""
    _run(load_container(logging=False), "approve", by, alert_id, {}, key, as_json)


@alert_app.command("reject")
def alert_reject(alert_id: str, by: By, reason: Annotated[str, typer.Option()], key: Key = "",
                 as_json: Json = False) -> None:
    """Refuse the version waiting for approval."""
    _run(load_container(logging=False), "reject", by, alert_id, {"reason": reason}, key, as_json)


@alert_app.command("cancel")
def alert_cancel(alert_id: str, by: By, reason: Annotated[str, typer.Option()],
                 allow_reissue: Annotated[str, typer.Option(help="higher_tier | after_silence | any")] = "higher_tier",
                 key: Key = "", as_json: Json = False) -> None:
    """Cancel any alert: the all-clear goes to everyone it reached."""
    if allow_reissue not in ("higher_tier", "after_silence", "any"):
        console.print("error: --allow-reissue is higher_tier, after_silence or any")
        raise typer.Exit(2)
    _run(load_container(logging=False), "cancel", by, alert_id, {"reason": reason, "allow_reissue": allow_reissue},
         key, as_json)


@alert_app.command("update")
def alert_update(alert_id: str, by: By, tier: Annotated[str, typer.Option()] = "",
                 expires_in: Annotated[float, typer.Option("--expires-in", help="seconds from now")] = 0,
                 key: Key = "", as_json: Json = False) -> None:
    """Change an alert's tier or expiry (a new version)."""
    body: dict[str, Any] = {}
    if tier:
        body["tier"] = tier
    if expires_in:
        body["expires"] = time.time() + expires_in
    _run(load_container(logging=False), "update", by, alert_id, body, key, as_json)


@silence_app.command("add")
def silence_add(by: By, comment: Annotated[str, typer.Option()],
                duration: Annotated[float, typer.Option(help="seconds")] = 3600,
                station: str = "", rule: str = "", hazard: str = "", area: str = "", source: str = "",
                as_json: Json = False) -> None:
    """Silence matching sources for a while (their readings are still evaluated and kept)."""
    from warning.control.silences import SilenceRequest, new_silence

    matchers = {k: v for k, v in {"station": station, "rule": rule, "hazard": hazard, "area": area,
                                  "source": source}.items() if v}
    try:
        request = SilenceRequest.model_validate({"matchers": matchers, "comment": comment,
                                                 "ends_at": datetime.now(UTC) + timedelta(seconds=duration)})
    except ValidationError as exc:
        console.print(f"error: {exc.errors()[0]['msg']}")
        raise typer.Exit(2) from exc
    c = load_container(logging=False)
    silence = new_silence(request, by, needs_approval=False)

    async def go() -> None:
        await _officer(c, by)
        try:
            await c.silences.save(silence)
        finally:
            await c.redis.aclose()

    asyncio.run(go())
    print_json({"silence_id": silence.silence_id, "status": silence.status(time.time())})


@silence_app.command("list")
def silence_list(as_json: Json = False) -> None:
    """Every silence with its status."""
    c = load_container(logging=False)

    async def go() -> list[Any]:
        try:
            return list(await c.silences.all())
        finally:
            await c.redis.aclose()

    now = time.time()
    print_json([{**s.model_dump(mode="json"), "status": s.status(now)} for s in asyncio.run(go())])


@silence_app.command("expire")
def silence_expire(silence_id: str, by: By) -> None:
    """End a silence now."""
    c = load_container(logging=False)

    async def go() -> Any:
        await _officer(c, by)
        try:
            return await c.silences.expire(silence_id)
        finally:
            await c.redis.aclose()

    silence = asyncio.run(go())
    if silence is None:
        console.print(f"error: no silence {silence_id!r}")
        raise typer.Exit(1)
    print_json({"silence_id": silence_id, "status": silence.status(time.time())})
