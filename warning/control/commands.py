"""Officers' commands on an alert's lifecycle state (pure).

The API and CLI put a command on ``warning.control``, keyed by the alert key; the lifecycle
agent, the one writer of that state, applies it here between two signals and answers with
an :class:`Outcome` (an HTTP status and body). A command is applied once: its outcome is
kept in the state (``done``), so a replay after a crash, or a client's retry with the same
Idempotency-Key, gets the first answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from warning.areas import inside
from warning.control.release import release_pending
from warning.lifecycle import LifecycleConfig, LifecycleState, clear, is_active, versioned
from warning.models import AlertVersion, Tier

Op = Literal["issue", "update", "cancel", "approve", "reject", "resweep"]
Reissue = Literal["higher_tier", "after_silence", "any"]
KEEP_DONE = 50  # outcomes of the latest commands kept per alert (retries come within minutes)


class Actor(BaseModel):
    id: str
    role: str
    level: str = ""
    area: str = ""  # officers and issuers: their jurisdiction
    via: str = "api"  # api, console, cli, sms


class Command(BaseModel):
    command_id: str
    op: Op
    alert_key: str
    alert_id: str = ""
    actor: Actor
    at: float  # wall clock, epoch seconds
    body: dict[str, Any] = Field(default_factory=dict)

    @property
    def weight(self) -> int:
        """In a lifecycle batch a command counts as one signal."""
        return 1


@dataclass
class Outcome:
    status: int
    body: dict[str, Any]


@dataclass
class Applied:
    outcome: Outcome
    versions: list[AlertVersion] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)  # events for the alert's trail


def command_id(actor_id: str, op: str, target: str, idempotency_key: str) -> str:
    """Stable for a retry: the same caller, operation, alert and Idempotency-Key."""
    return hashlib.blake2b(f"{actor_id}\x00{op}\x00{target}\x00{idempotency_key}".encode(), digest_size=12).hexdigest()


def manual_alert_id(hazard: str, area: str, at: float, cid: str, drill: bool) -> str:
    stamp = datetime.fromtimestamp(at, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{'drill' if drill else 'manual'}-{hazard}-{area}-{stamp}-{cid[:6]}"


def apply_command(state: LifecycleState, cmd: Command, config: LifecycleConfig) -> Applied:
    """Apply ``cmd`` to ``state`` (mutated), or answer as the first time if it was applied."""
    done: dict[str, Any] = state.setdefault("done", {})
    if cmd.command_id in done:
        first = done[cmd.command_id]
        return Applied(Outcome(first["status"], first["body"]))
    applied = _HANDLERS[cmd.op](state, cmd, config)
    done[cmd.command_id] = {"status": applied.outcome.status, "body": applied.outcome.body}
    while len(done) > KEEP_DONE:
        done.pop(next(iter(done)))
    refused = applied.outcome.status >= 400
    event: dict[str, Any] = {"event": f"{cmd.op}_refused" if refused else cmd.op, "by": cmd.actor.id,
                             "role": cmd.actor.role, "via": cmd.actor.via, "at": _iso(cmd.at),
                             "command_id": cmd.command_id}
    if refused:
        event["reason"] = applied.outcome.body.get("detail", "")
    elif cmd.body.get("reason"):
        event["reason"] = cmd.body["reason"]
    if applied.versions:
        event["version"] = applied.versions[-1].version
    applied.audit.insert(0, event)
    return applied


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def _wall(cmd: Command) -> datetime:
    return datetime.fromtimestamp(cmd.at, UTC)


def _refuse(status: int, detail: str) -> Applied:
    return Applied(Outcome(status, {"detail": detail}))


def _answer(state: LifecycleState, alert: AlertVersion | None, status: int = 200) -> Outcome:
    body: dict[str, Any] = {"alert_id": state.get("alert_id") or (alert.alert_id if alert else "")}
    if alert is not None:
        body["version"] = alert.version
    pending = state.get("pending")
    body["status"] = "pending_approval" if pending else "released"
    if pending:
        body["approval_id"] = pending["approval_id"]
    if alert is not None and alert.msg_type == "Cancel":
        body["status"] = "cancelled"
    return Outcome(status, body)


def _edits(body: dict[str, Any], author: str) -> dict[str, Any]:
    edits: dict[str, Any] = {"author": author}
    for name in ("texts", "areas", "polygons", "circles", "audience", "expires"):
        if body.get(name) is not None:
            edits[name] = body[name]
    return edits


def _issue(state: LifecycleState, cmd: Command, config: LifecycleConfig) -> Applied:
    if is_active(state):
        return _refuse(409, f"alert {state['alert_id']} already exists")
    b = cmd.body
    areas: list[str] = b["areas"]
    state.update({"hazard": b["hazard"], "area": areas[0], "key": cmd.alert_key, "source": "manual",
                  "drill": bool(b.get("drill")), "alert_id": cmd.alert_id, "version": 1, "identifiers": [],
                  "edits": _edits(b, cmd.actor.id), "pinned": b["tier"]})
    tier = Tier(b["tier"])
    cause = f"issued by hand by {cmd.actor.id}"
    alert = versioned(state, tier, "Alert", cmd.at, float(b["expires"]), _wall(cmd), cause, config)
    return Applied(_answer(state, alert, 201), [alert])


def _update(state: LifecycleState, cmd: Command, config: LifecycleConfig) -> Applied:
    if not is_active(state):
        return _refuse(409, f"alert {cmd.alert_id} is not active (cancelled or expired): nothing to change")
    b = cmd.body
    state["edits"] = {**(state.get("edits") or {}), **_edits(b, cmd.actor.id)}
    tier = Tier(b.get("tier") or state["tier"])
    if b.get("tier"):
        state["pinned"] = tier.value  # the readings may raise it again, not lower it
    state["version"] += 1
    cause = f"changed by hand by {cmd.actor.id}"
    alert = versioned(state, tier, "Update", cmd.at, state["expires"], _wall(cmd), cause, config)
    return Applied(_answer(state, alert), [alert])


def _cancel(state: LifecycleState, cmd: Command, config: LifecycleConfig) -> Applied:
    if not is_active(state):
        return _refuse(409, f"alert {cmd.alert_id} is not active (already cancelled or expired)")
    cancelled = Tier(state["tier"])
    reason = str(cmd.body.get("reason", ""))
    state["version"] += 1
    alert = versioned(state, Tier.none, "Cancel", cmd.at, state["expires"], _wall(cmd),
                      f"cancelled by {cmd.actor.id}: {reason}", config)
    clear(state)
    for source, (_, at) in list(state.get("stations", {}).items()):
        state["stations"][source] = [Tier.none.value, at]  # only a new reading may issue it again
    allow: Reissue = cmd.body.get("allow_reissue", "higher_tier")
    if allow != "any" and state.get("source") != "manual":
        until = float(cmd.body.get("silence_until") or 0) or cmd.at + config.ttl_s
        state["reissue"] = {"tier": (Tier.red if allow == "after_silence" else cancelled).value, "until": until,
                            "allow": allow}
    return Applied(_answer(state, alert), [alert])


def _approve(state: LifecycleState, cmd: Command, config: LifecycleConfig) -> Applied:
    if not is_active(state):
        return _refuse(409, f"alert {cmd.alert_id} is not active (cancelled or expired): nothing to approve")
    pending = state.get("pending")
    if not pending:
        return _refuse(409, f"alert {cmd.alert_id} v{state['version']} is already released: nothing waits for "
                            "approval")
    if pending["author"] == cmd.actor.id:
        return _refuse(403, f"two-person rule: {cmd.actor.id} wrote this draft (v{pending['version']}) and may not "
                            "approve it; another officer of the area must")
    if cmd.actor.role not in ("officer", "admin") or not (cmd.actor.role == "admin" or inside(state["area"],
                                                                                             cmd.actor.area)):
        return _refuse(403, f"{cmd.actor.id} may not approve alerts of area {state['area']}")
    if cmd.body.get("edits"):  # approve with edits: a new draft, which another person approves
        return _update(state, cmd.model_copy(update={"body": cmd.body["edits"]}), config)
    alert = release_pending(state)
    assert alert is not None
    return Applied(_answer(state, alert), [alert])


def _reject(state: LifecycleState, cmd: Command, config: LifecycleConfig) -> Applied:
    pending = state.get("pending") if is_active(state) else None
    if not pending:
        return _refuse(409, f"alert {cmd.alert_id} has no version waiting for approval")
    if cmd.actor.role not in ("officer", "admin") or not (cmd.actor.role == "admin" or inside(state["area"],
                                                                                             cmd.actor.area)):
        return _refuse(403, f"{cmd.actor.id} may not reject alerts of area {state['area']}")
    state.pop("pending")
    return Applied(Outcome(200, {"alert_id": state["alert_id"], "version": pending["version"],
                                 "status": "rejected", "segments": pending["segments"]}))


def _resweep(state: LifecycleState, cmd: Command, config: LifecycleConfig) -> Applied:
    """Silences changed: the agent re-applies its sources before this (nothing to do here)."""
    return Applied(Outcome(200, {"alert_id": state.get("alert_id", ""), "status": "resweeped"}))


_HANDLERS = {"issue": _issue, "update": _update, "cancel": _cancel, "approve": _approve, "reject": _reject,
             "resweep": _resweep}


def hold_timed_out(state: LifecycleState, now: float, config: LifecycleConfig,
                   levels: list[str]) -> tuple[AlertVersion | None, dict[str, Any] | None]:
    """A pending approval past its hold: released (the version to fan out) or moved one level up."""
    pending = state.get("pending")
    if not pending or now < float(pending["hold_until"]) or not is_active(state):
        return None, None
    tier = Tier(state["tier"])
    event: dict[str, Any] = {"event": "approval_timeout", "by": "policy", "at": _iso(now),
                             "version": pending["version"]}
    if config.policy.timeout_action(tier) == "release" or pending["level"] + 1 >= len(levels):
        event["action"] = "released"
        return release_pending(state), event
    # A new dict, not an edit: the agent tells a changed approval (index, approvers) by comparing them
    state["pending"] = pending = {**pending, "level": pending["level"] + 1,
                                  "hold_until": now + config.policy.hold_for(tier)}
    event.update(action="escalated", level=levels[pending["level"]])
    return None, event

