"""Stage 1 for CAP: feeds.cap -> validate -> tier signals (same topic as the readings' signals).

Invalid, hostile or unusable messages go to warning.rejected with the reason; Test, System
and Draft messages are logged and not dispatched; an Exercise is a drill (its own alert,
the drill audience, every text marked). Chain roots (which alert an Update or
Cancel belongs to) are kept in Redis, because the messages of one chain arrive with
different keys, on different partitions.
"""

from __future__ import annotations

import faust
import structlog

from warning.bootstrap import Container
from warning.cap.model import read_message
from warning.cap.signals import cap_signals, chain_key
from warning.cap.validate import validate_cap
from warning.keys import RETENTION_S
from warning.pipeline.common import raw_topic, reject

log = structlog.get_logger()


def register(app: faust.App, c: Container) -> None:
    cap = raw_topic(app, c.topics.cap)
    signals = raw_topic(app, c.topics.signals)
    rejected = raw_topic(app, c.topics.rejected)

    @app.agent(cap, name="cap-ingest")
    async def cap_ingest(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            c.pulse.took_work()
            key, raw = event.key, event.value or b""
            verdict = validate_cap(raw)
            if not verdict.valid or verdict.root is None or verdict.version is None:
                await reject(rejected, "cap", "; ".join(verdict.errors), c.topics.cap, key, raw)
                continue
            message = read_message(verdict.root, verdict.version)
            chain_keys = [chain_key(r.sender, r.identifier) for r in message.references]
            roots: dict[str, str] = {}
            if chain_keys:
                found = await c.redis.hmget(c.keys.cap_chains, chain_keys)
                roots = {k: str(v) for k, v in zip(chain_keys, found, strict=True) if v}
            decision = cap_signals(message, c.pack.cap, roots)
            if decision.refused:
                await reject(rejected, "cap", decision.refused, c.topics.cap, key, raw)
                continue
            if decision.skipped:
                log.info("cap_skipped", identifier=message.identifier, reason=decision.skipped)
                continue
            if decision.unseen_references:
                log.warning("cap_chain_unseen", identifier=message.identifier, msg_type=message.msg_type,
                            references=decision.unseen_references, root=decision.root,
                            meaning="starts the chain" if message.msg_type == "Update" else "ends the chain")
            if decision.root:
                await c.redis.hset(c.keys.cap_chains, chain_key(message.sender, message.identifier), decision.root)
                await c.redis.expire(c.keys.cap_chains, RETENTION_S)
            for signal in decision.signals:
                log.info("cap_signal", identifier=message.identifier, hazard=signal.hazard, area=signal.area,
                         tier=signal.tier.value, msg_type=message.msg_type)
                await signals.send(key=signal.alert_key.encode(), value=signal.model_dump_json().encode())
