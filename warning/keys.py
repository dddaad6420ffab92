"""Every Redis key the project uses, in one place (arq's constants.py, one per prefix).

Keys of one alert share a hash tag ``{alert_id}`` so they stay in one Redis Cluster slot;
queue keys are tagged per channel.
"""

from __future__ import annotations

from dataclasses import dataclass

from warning.models import Tier


@dataclass(frozen=True)
class Keys:
    prefix: str = "warning"

    # Delivery queues: one stream per channel and tier (the priority lanes).
    def queue(self, channel: str, tier: Tier | str) -> str:
        return f"{self.prefix}:q:{{{channel}}}:{Tier(tier).value}"

    def group(self, channel: str) -> str:
        """Consumer group name for a channel's streams."""
        return f"{self.prefix}:{channel}"

    def dead_letters(self, channel: str) -> str:
        return f"{self.prefix}:dead:{{{channel}}}"

    def delayed(self, channel: str) -> str:
        """Sorted set: jobs waiting to be retried, scored by when they are due (epoch seconds)."""
        return f"{self.prefix}:delayed:{{{channel}}}"

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

    def enqueued(self, alert_id: str, version: int) -> str:
        """Set of ``channel:recipient`` already enqueued for a version (idempotency)."""
        return f"{self.prefix}:enq:{{{alert_id}}}:{version}"

    def delivery_counts(self, alert_id: str, channel: str) -> str:
        """Hash: status -> number of deliveries currently in that status."""
        return f"{self.prefix}:counts:{{{alert_id}}}:{channel}"

    def reach(self, alert_id: str) -> str:
        """Hash: handoff-latency histogram bucket -> count (see warning.reach)."""
        return f"{self.prefix}:reach:{{{alert_id}}}"

    def acks(self, alert_id: str) -> str:
        """Hash: officer id -> JSON of their first acknowledgement."""
        return f"{self.prefix}:acks:{{{alert_id}}}"

    def door_knocks(self, alert_id: str) -> str:
        """Hash: resident id -> JSON task for their grid worker (no channel reached them)."""
        return f"{self.prefix}:knock:{{{alert_id}}}"

    def sms_ref(self, ref: str) -> str:
        """String: an SMS short reference (what a reply quotes) -> alert id."""
        return f"{self.prefix}:smsref:{ref}"

    def sms_to(self, phone: str) -> str:
        """String: JSON of the last alert SMS sent to a number (what a bare "1" answers)."""
        return f"{self.prefix}:smsto:{phone}"

    def provider_seen(self, provider_id: str) -> str:
        """String: set once per inbound provider message id (replayed webhooks do nothing)."""
        return f"{self.prefix}:seen:{provider_id}"

    def delivery(self, delivery_id: str) -> str:
        """Hash: one delivery's status and timestamps (the receipt)."""
        return f"{self.prefix}:delivery:{delivery_id}"

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
        return f"{self.prefix}:grids:geojson"

    @property
    def grids_version(self) -> str:
        return f"{self.prefix}:grids:version"

    @property
    def cap_chains(self) -> str:
        """Hash: "sender,identifier" of every CAP message seen -> the root of its chain."""
        return f"{self.prefix}:cap:chains"

    @property
    def active_alerts(self) -> str:
        """Sorted set: alert id scored by expiry (epoch seconds)."""
        return f"{self.prefix}:alerts:active"
