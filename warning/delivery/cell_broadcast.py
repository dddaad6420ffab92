"""Cell broadcast (小区广播; WEA, EU-Alert): one message per alert version, area and
language to a Cell Broadcast Centre, no list of numbers at all (pure).

The CBC is reached over its ECBE REST interface in the shape of Osmocom osmo-cbc's
(``POST /api/ecbe/v1/message``, ``DELETE /api/ecbe/v1/message/{message_id}``). The CBS
message identifier (3GPP TS 23.041 §9.4.1.2.2, ETSI TS 102 900 EU-Alert) says what a
handset shows: the tier's channel (which tiers are broadcast is the directory's audience
policy, ``cell_broadcast`` per tier), the exercise channel for a drill, and each further
language on its own identifier (+13, the "additional language" identifiers). The serial
number's message code is stable per alert and area; its update number steps with each
version the CBC is sent, so a handset shows an update and not a new message.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from warning.models import Tier
from warning.yamlfile import load_model

CHANNEL = "cell_broadcast"


class BroadcastConfigError(ValueError):
    """A cell broadcast file that cannot be used; names the file and the field."""


Language = Literal["zh-CN", "en"]


def _languages() -> list[Language]:
    return ["zh-CN", "en"]


def _message_ids() -> dict[Tier, int]:
    return {Tier.red: 4371, Tier.orange: 4373, Tier.yellow: 4396, Tier.blue: 4396}


class BroadcastConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cbe_name: str = "warning-dispatch"
    message_ids: dict[Tier, int] = Field(default_factory=_message_ids)
    exercise_message_id: int = Field(default=4381, ge=0, le=65535)  # CMAS / EU-Alert Exercise
    additional_language_offset: int = Field(default=13, ge=0, le=1000)
    languages: list[Language] = Field(default_factory=_languages, min_length=1)
    repetition_period_s: int = Field(default=60, ge=1, le=4095)
    max_broadcasts: int = Field(default=65535, ge=1, le=65535)  # and never past the alert's expiry
    geo_scope: Literal["cell_wide_immediate", "plmn_wide", "lac_sac_tac_wide", "cell_wide"] = "cell_wide"
    # osmo-cbc takes only scope_plmn (a CBC per area); "area" names the area code for a CBC
    # that maps areas to its cells.
    scope: Literal["area", "plmn"] = "area"

    def message_id(self, tier: Tier, drill: bool, language: str) -> int:
        base = self.exercise_message_id if drill else self.message_ids[tier]
        return base + self.additional_language_offset * self.languages.index(language)  # type: ignore[arg-type]


def load_broadcast_config(path: Path | None = None) -> BroadcastConfig:
    return load_model(BroadcastConfig, path, "cell-broadcast.yaml", "cell broadcast", BroadcastConfigError)


def broadcast_targets(config: BroadcastConfig, areas: list[str]) -> list[tuple[str, str, str]]:
    """(recipient, address, language) per area and language. Fan-out calls it for an alert
    whose loudest tier's audience names cell broadcast: later versions (an update, a
    downgrade, the Cancel) go to the same cells, so what the CBC shows follows the alert
    until it is deleted."""
    return [(f"area:{area}:{lang}", area, lang) for area in areas if area.isdigit() for lang in config.languages]


def message_code(alert_id: str, area: str) -> int:
    """The serial number's 10-bit message code, the same for every version of one broadcast."""
    return zlib.crc32(f"{alert_id}|{area}".encode()) % 1024


def cbc_message(config: BroadcastConfig, *, message_id: int, code: int, update: int, area: str, language: str,
                text: str, tier: Tier, broadcasts: int) -> dict[str, Any]:
    """The body of ``POST /api/ecbe/v1/message`` (osmo-cbc's cbc_message)."""
    scope: dict[str, Any] = {"scope_plmn": {}} if config.scope == "plmn" else {"scope_area": {"area_code": area}}
    return {
        "cbe_name": config.cbe_name,
        "category": "high_priority" if tier in (Tier.red, Tier.orange) else "normal",
        "repetition_period": config.repetition_period_s,
        "num_of_bcast": broadcasts,
        "scope": scope,
        "smscb_message": {
            "message_id": message_id,
            "serial_nr": {"serial_nr_decoded": {"geo_scope": config.geo_scope, "msg_code": code,
                                                "update_nr": update % 16}},
            "payload": {"payload_decoded": {"character_set": "gsm" if text.isascii() else "ucs2",
                                            "language": language.split("-")[0], "data_utf8": text}},
        },
    }


def broadcasts_until(config: BroadcastConfig, seconds_left: float) -> int:
    """How many repetitions fit before the alert expires: the CBC stops on its own then."""
    return max(1, min(config.max_broadcasts, int(seconds_left // config.repetition_period_s) + 1))
