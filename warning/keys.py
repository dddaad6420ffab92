"""Every Redis key the project uses, in one place (arq's constants.py, one per prefix).

Every Lua script and MULTI touches keys of one Redis Cluster hash slot (the ``{tag}``;
tests/unit/test_key_slots.py proves it): a channel's queue is cut into ``shards`` lanes
``{channel:n}``, a recipient always in the same one, and the per-delivery keys, the
idempotency sets and the counts of a shard share its tag; keys of one alert share
``{alert_id}``; escalation, the alert indexes, the silences and the grid registry each
have their own tag.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from functools import lru_cache

from warning.models import Tier

RETENTION_S = 7 * 86400  # alert records, receipts and their indexes outlive the alert by a week
_DELIVERY_ID = re.compile(r"\.v\d+\.([a-z0-9_]+)\.(.+)$")  # models.delivery_id: alert.vN.channel.recipient
_CHANNEL = re.compile(r"[a-z0-9_]+")


@lru_cache(maxsize=64)
def _plain_channel(channel: str) -> bool:
    return _CHANNEL.fullmatch(channel) is not None


def shard_of(recipient: str, shards: int) -> int:
    """The shard lane a recipient's deliveries go to (stable across processes and hosts)."""
    return zlib.crc32(recipient.encode()) % shards if shards > 1 else 0


@dataclass(frozen=True)
class Keys:
    prefix: str = "warning"
    shards: int = 1  # WARNING_SHARD_LANES: lanes per channel

    @property
    def shard_lanes(self) -> str:
        """String: the shard count the queues were written with (a change under them is refused)."""
        return f"{self.prefix}:shard-lanes"

    def shard(self, recipient: str) -> int:
        return shard_of(recipient, self.shards)

    # Delivery queues: one stream per channel, shard and tier (the priority lanes).
    def queue(self, channel: str, tier: Tier | str, shard: int = 0) -> str:
        return f"{self.prefix}:q:{{{channel}:{shard}}}:{Tier(tier).value}"

    def group(self, channel: str) -> str:
        """Consumer group name for a channel's streams."""
        return f"{self.prefix}:{channel}"

    def dead_letters(self, channel: str) -> str:
        return f"{self.prefix}:dead:{{{channel}}}"

    def delayed(self, channel: str, shard: int = 0) -> str:
        """Sorted set: a shard's jobs waiting to be retried, scored by when they are due (epoch seconds)."""
        return f"{self.prefix}:delayed:{{{channel}:{shard}}}"

    def awaiting(self, channel: str) -> str:
        """Sorted set: delivery ids a provider took, scored by when their receipt is overdue."""
        return f"{self.prefix}:awaiting:{{{channel}}}"

    def awaiting_jobs(self, channel: str) -> str:
        """Hash: delivery id -> job JSON, for the fallback if the receipt fails or never comes."""
        return f"{self.prefix}:awaiting-jobs:{{{channel}}}"

    def rate_bucket(self, sender: str) -> str:
        """Hash: a sender's token bucket (tokens, last refill), shared by every consumer."""
        return f"{self.prefix}:rate:{{{sender}}}"

    # Per-alert state
    def alert(self, alert_id: str) -> str:
        """Hash: the latest version's fields (tier, version, hazard, area, expires…)."""
        return f"{self.prefix}:alert:{{{alert_id}}}"

    def enqueued(self, alert_id: str, version: int, channel: str, shard: int = 0) -> str:
        """Set of ``channel:recipient`` already enqueued in a shard for a version (idempotency)."""
        return f"{self.prefix}:enq:{{{channel}:{shard}}}:{alert_id}:{version}"

    def delivery_counts(self, alert_id: str, channel: str, shard: int = 0) -> str:
        """Hash: status -> number of the alert's deliveries in a shard currently in that status."""
        return f"{self.prefix}:counts:{{{channel}:{shard}}}:{alert_id}"

    def reach(self, alert_id: str) -> str:
        """Hash: handoff-latency histogram bucket -> count (see warning.reach)."""
        return f"{self.prefix}:reach:{{{alert_id}}}"

    def reach_channel(self, alert_id: str, channel: str) -> str:
        """Hash: the same histogram for one channel (the after-action report)."""
        return f"{self.prefix}:reach:{{{alert_id}}}:{channel}"

    def reach_all(self, channel: str, tier: str, drill: bool = False) -> str:
        """Hash: handoff-latency histogram over every alert of a channel and tier (drills apart)."""
        return f"{self.prefix}:reach-all:{channel}:{tier}" + (":drill" if drill else "")

    def acks(self, alert_id: str) -> str:
        """Hash: officer id -> JSON of their first acknowledgement."""
        return f"{self.prefix}:acks:{{{alert_id}}}"

    def escalation(self, alert_id: str) -> str:
        """Hash: an alert's escalation chain (state, tier, step, level, next due time)."""
        return f"{self.prefix}:{{esc}}:chain:{alert_id}"

    @property
    def escalation_due(self) -> str:
        """Sorted set: alert id scored by when its next escalation step is due."""
        return f"{self.prefix}:{{esc}}:due"

    @property
    def escalation_outbox(self) -> str:
        """Stream: escalation steps taken, to notify and publish (consumer group escalators)."""
        return f"{self.prefix}:{{esc}}:outbox"

    def feedback(self, alert_id: str) -> str:
        """List: grid workers' and officers' reports on an alert (JSON, oldest first)."""
        return f"{self.prefix}:feedback:{{{alert_id}}}"

    def confirmations(self, alert_id: str) -> str:
        """Prefix of the sets ``…:<grid id>``: the grid workers who confirmed the alert."""
        return f"{self.prefix}:confirm:{{{alert_id}}}"

    def audit(self, alert_id: str) -> str:
        """List: the alert's audit trail (acks, escalation steps, feedback), JSON, oldest first."""
        return f"{self.prefix}:audit:{{{alert_id}}}"

    def alert_grids(self, alert_id: str) -> str:
        """Set: the grids an alert was sent to (for quorum and the report)."""
        return f"{self.prefix}:grids:{{{alert_id}}}"

    @property
    def stats(self) -> str:
        """Hash: counters for /metrics (escalations, …)."""
        return f"{self.prefix}:stats"

    # Officers in control (warning/control/)
    @property
    def silences(self) -> str:
        """Hash: silence id -> silence JSON (warning/control/silences.py)."""
        return f"{self.prefix}:{{control}}:silences"

    @property
    def silences_version(self) -> str:
        """Counter: moves on every change to the silences, so workers re-read them."""
        return f"{self.prefix}:{{control}}:silences:version"

    @property
    def approvals(self) -> str:
        """Hash: alert id -> its pending approval (warning/control/replies.py writes it)."""
        return f"{self.prefix}:approvals"

    def control_outcome(self, command_id: str) -> str:
        """String: a command's outcome (status and body) as the lifecycle applied it."""
        return f"{self.prefix}:control:{{{command_id}}}:outcome"

    def control_alert(self, command_id: str) -> str:
        """String: the alert id a hand-issued command creates (its retries reuse it)."""
        return f"{self.prefix}:control:{{{command_id}}}:alert"

    def control_reply(self, command_id: str) -> str:
        """List: the outcome pushed for the API request waiting on it (BLPOP)."""
        return f"{self.prefix}:control:{{{command_id}}}:reply"

    @property
    def history(self) -> str:
        """Sorted set: archived (closed) alert ids by when they closed (warning/response/history.py)."""
        return f"{self.prefix}:{{alerts}}:history"

    def archived(self, alert_id: str) -> str:
        """String: a closed alert's frozen detail and after-action report (JSON)."""
        return f"{self.prefix}:history:{{{alert_id}}}"

    def heartbeats(self, role: str) -> str:
        """Sorted set: a role's process instances by their last heartbeat (warning/heartbeat.py)."""
        return f"{self.prefix}:heartbeats:{{hb:{role}}}"

    def heartbeat_info(self, role: str, instance: str) -> str:
        """String: what an instance's last heartbeat said (host, pid, when it last took work);
        under its role's tag, so one MGET reads a role's instances on Redis Cluster."""
        return f"{self.prefix}:heartbeat:{{hb:{role}}}:{instance}"

    @property
    def tokens(self) -> str:
        """Hash: SHA-256 of an API token -> JSON of who holds it (the token itself is never stored)."""
        return f"{self.prefix}:tokens"

    def door_knocks(self, alert_id: str) -> str:
        """Hash: resident id -> JSON task for their grid worker (no channel reached them)."""
        return f"{self.prefix}:knock:{{{alert_id}}}"

    def sms_ref(self, ref: str) -> str:
        """String: an SMS short reference (what a reply quotes) -> alert id."""
        return f"{self.prefix}:smsref:{ref}"

    def sms_to(self, phone: str) -> str:
        """String: JSON of the last alert SMS sent to a number (what a bare "1" answers)."""
        return f"{self.prefix}:smsto:{phone}"

    def smpp_message(self, gateway: str, message_id: str) -> str:
        """String: an SMSC's message id (per gateway) -> our delivery id, for its delivery receipt."""
        return f"{self.prefix}:smpp:{gateway}:{message_id}"

    def broadcasts(self, alert_id: str) -> str:
        """Hash: "area:language" -> JSON of what the CBC broadcasts for the alert there."""
        return f"{self.prefix}:cbc:{{{alert_id}}}"

    def provider_seen(self, provider_id: str) -> str:
        """String: set once per inbound provider message id (replayed webhooks do nothing)."""
        return f"{self.prefix}:seen:{provider_id}"

    def delivery(self, delivery_id: str) -> str:
        """Hash: one delivery's status and timestamps (the receipt), in its shard's slot."""
        found = _DELIVERY_ID.search(delivery_id)
        tag = f"{found[1]}:{self.shard(found[2])}" if found else "delivery"  # not ours: its own slot
        return f"{self.prefix}:delivery:{{{tag}}}:{delivery_id}"

    def delivery_in(self, channel: str, shard: int, alert_id: str, recipient: str, delivery_id: str) -> str:
        """:meth:`delivery` from the channel and shard a batch's marks already have: the same
        key wherever the id reads back unambiguously (no dot in the alert id, no newline in
        the recipient, a plain channel name), else read back out of the id as everyone does."""
        if "." in alert_id or "\n" in recipient or not _plain_channel(channel):
            return self.delivery(delivery_id)
        return f"{self.prefix}:delivery:{{{channel}:{shard}}}:{delivery_id}"

    # Recipient directory and grid registry
    def residents(self, grid_id: str) -> str:
        """Hash: resident id -> compact JSON record (phone, push token, channels…)."""
        return f"{self.prefix}:dir:{{{grid_id}}}:residents"

    def residents_opted(self, grid_id: str) -> str:
        """Hash: the opted-in residents of a grid (the yellow-tier audience), same records."""
        return f"{self.prefix}:dir:{{{grid_id}}}:opted"

    def workers(self, grid_id: str) -> str:
        """Hash: grid worker id -> record."""
        return f"{self.prefix}:dir:{{{grid_id}}}:workers"

    @property
    def officers(self) -> str:
        """Hash: duty officer id -> record (with level and jurisdiction)."""
        return f"{self.prefix}:dir:officers"

    @property
    def people(self) -> str:
        """Hash: person id -> "role grid,grid…": where they are indexed (moves and removals)."""
        return f"{self.prefix}:dir:people"

    @property
    def grids(self) -> str:
        """String: the grid registry as GeoJSON; ``grids_version`` changes with every import."""
        return f"{self.prefix}:{{grids}}:geojson"

    @property
    def grids_version(self) -> str:
        return f"{self.prefix}:{{grids}}:version"

    @property
    def cap_chains(self) -> str:
        """Hash: "sender,identifier" of every CAP message seen -> the root of its chain."""
        return f"{self.prefix}:cap:chains"

    @property
    def active_alerts(self) -> str:
        """Sorted set: alert id scored by expiry (epoch seconds)."""
        return f"{self.prefix}:{{alerts}}:active"
