"""An in-memory fake of the escalation timers (warning/response/escalation.py), held to the
same contract tests as the Redis original (tests/integration/test_store_contract.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from warning.models import AlertVersion, Tier


class FakeEscalationTimers:
    """warning.response.escalation.EscalationTimers in memory: chains, their due times and
    the outbox of fired steps (what the escalator reads)."""

    def __init__(self, levels: list[str], timeouts: dict[str, float]) -> None:
        self.levels = levels
        self.timeouts = timeouts
        self.chains: dict[str, dict[str, Any]] = {}
        self.due: dict[str, float] = {}
        self.outbox: list[dict[str, Any]] = []

    async def on_version(self, alert: AlertVersion, now: float | None = None) -> str:
        return (await self.on_versions([alert], time.time() if now is None else now))[0]

    async def on_versions(self, alerts: Sequence[AlertVersion], now: float | None = None) -> list[str]:
        outcomes = []
        for alert in alerts:
            chain = self.chains.get(alert.alert_id)
            started = alert.issued_at.timestamp() if now is None else now
            if alert.msg_type == "Cancel":
                self.stop(alert.alert_id, "cancelled")
                outcomes.append("cancelled")
            elif chain is not None and Tier(chain["tier"]).rank >= alert.tier.rank:
                outcomes.append("unchanged")
            elif not (timeout := self.timeouts.get(alert.tier.value)):
                outcomes.append("none")
            else:
                self.chains[alert.alert_id] = {"tier": alert.tier.value, "version": alert.version, "state": "running",
                                               "step": 0, "level": self.levels[0], "timeout_s": float(timeout),
                                               "due": started + timeout}
                self.due[alert.alert_id] = started + timeout
                outcomes.append("restarted" if chain else "started")
        return outcomes

    def stop(self, alert_id: str, why: str) -> bool:
        """stop_chain's part: no further step. True if a running chain stopped."""
        self.due.pop(alert_id, None)
        chain = self.chains.get(alert_id)
        if chain is None or chain["state"] != "running":
            return False
        chain.update(state=why, due=None)
        return True

    async def fire_due(self, now: float, limit: int = 100) -> int:
        fired = 0
        for alert_id, at in sorted(self.due.items(), key=lambda kv: kv[1])[:limit]:
            if at > now:
                continue
            chain = self.chains[alert_id]
            del self.due[alert_id]
            step = chain["step"] + 1
            chain.update(step=step, level=self.levels[step])
            if step + 1 < len(self.levels):
                chain["due"] = self.due[alert_id] = at + chain["timeout_s"]
            else:
                chain.update(state="exhausted", due=None)
            self.outbox.append({"alert_id": alert_id, "step": step, "level": self.levels[step],
                                "version": chain["version"], "due": at})
            fired += 1
        return fired

    async def state(self, alert_id: str) -> dict[str, Any]:
        chain = self.chains.get(alert_id)
        if chain is None:
            return {"state": "none"}
        step = chain["step"]
        following = self.levels[step + 1] if chain["state"] == "running" and step + 1 < len(self.levels) else None
        return {"state": chain["state"], "tier": chain["tier"], "step": step, "level": chain["level"],
                "next_level": following, "next_due": chain["due"], "timeout_s": chain["timeout_s"]}
