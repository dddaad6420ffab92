"""Message templates (YAML, `WARNING_TEMPLATES_FILE`): texts per hazard, tier and channel in
zh-CN and en, with the CMA defence guidance as each tier's default instruction. Checked
at startup: an unknown placeholder names the file, the key and the placeholder."""

from __future__ import annotations

import string
from functools import cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from warning.models import AlertVersion, Tier
from warning.targeting.message import short_ref_of
from warning.yamlfile import describe, read_yaml

Language = Literal["zh-CN", "en"]
PLACEHOLDERS = ("tier", "hazard", "area", "headline", "instruction", "description", "until", "ref")
TIER_NAMES = {
    "zh-CN": {Tier.blue: "蓝色", Tier.yellow: "黄色", Tier.orange: "橙色", Tier.red: "红色"},
    "en": {Tier.blue: "BLUE", Tier.yellow: "YELLOW", Tier.orange: "ORANGE", Tier.red: "RED"},
}
DRILL_MARK = {"zh-CN": "【演练】", "en": "[EXERCISE] "}  # every text of a drill starts with it
_SEPARATOR = {"zh-CN": "", "en": " "}  # after an instruction that is present


class TemplateError(ValueError):
    """A template file that cannot be used; names the file, the key and the placeholder."""


class LanguageTexts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    headline: str | None = None
    alert: str | None = None
    cancel: str | None = None


class HazardTexts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: dict[Language, str] = Field(default_factory=dict)
    guidance: dict[Literal["blue", "yellow", "orange", "red"], dict[Language, str]] = Field(default_factory=dict)
    texts: dict[str, dict[str, dict[Language, str]]] = Field(default_factory=dict)  # tier|any -> channel|any -> lang


class TemplateFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default: dict[Language, LanguageTexts]
    hazards: dict[str, HazardTexts] = Field(default_factory=dict)


def language_of(language: str) -> Language:
    return "en" if language.startswith("en") else "zh-CN"


class Templates:
    def __init__(self, spec: TemplateFile) -> None:
        self.spec = spec

    def hazard_name(self, hazard: str, language: str) -> str:
        found = self.spec.hazards.get(hazard)
        return found.name.get(language_of(language), hazard) if found else hazard

    def has_tier(self, hazard: str, tier: str) -> bool:
        """Whether the hazard's templates know the tier (CMA's heat signal has no blue)."""
        found = self.spec.hazards.get(hazard)
        return not (found and found.guidance) or tier in found.guidance

    def _override(self, alert: AlertVersion, lang: Language, channel: str) -> str | None:
        found = self.spec.hazards.get(alert.hazard)
        if not found:
            return None
        for tier in ("cancel" if alert.msg_type == "Cancel" else alert.tier.value, "any"):
            for ch in (channel, "any"):
                text = found.texts.get(tier, {}).get(ch, {}).get(lang)
                if text:
                    return text
        return None

    def override_channels(self, alert: AlertVersion) -> list[str]:
        """Channels whose text differs from the language's default for this version."""
        found = self.spec.hazards.get(alert.hazard)
        tiers = ("cancel" if alert.msg_type == "Cancel" else alert.tier.value, "any")
        return sorted({ch for t in tiers for ch in (found.texts.get(t, {}) if found else {}) if ch != "any"})

    def render(self, alert: AlertVersion, language: str, area_name: str, timezone: str, channel: str = "") -> str:
        lang = language_of(language)
        default = self.spec.default[lang]
        values = {"tier": TIER_NAMES[lang].get(alert.tier, ""), "hazard": self.hazard_name(alert.hazard, lang),
                  "area": area_name, "until": alert.expires.astimezone(ZoneInfo(timezone)).strftime("%H:%M"),
                  "ref": short_ref_of(alert.alert_id, alert.version), "description": alert.cause, "instruction": ""}
        written = alert.texts.get(lang)
        guidance = self.spec.hazards.get(alert.hazard)
        instruction = written.instruction if written and written.instruction else (
            guidance.guidance.get(alert.tier.value, {}).get(lang, "") if guidance else "")  # type: ignore[call-overload]
        values["instruction"] = instruction + _SEPARATOR[lang] if instruction else ""
        if written and written.description:
            values["description"] = written.description
        values["headline"] = written.headline if written else (default.headline or "").format(**values)
        template = self._override(alert, lang, channel) or (
            default.cancel if alert.msg_type == "Cancel" else default.alert) or "{headline}"
        text = template.format(**values)
        return DRILL_MARK[lang] + text if alert.drill else text


def _check(node: Any, path: str, source: str) -> None:
    if isinstance(node, str):
        try:
            fields = [name for _, name, spec, conv in string.Formatter().parse(node) if name is not None]
        except ValueError as exc:
            raise TemplateError(f"{source}: {path}: {exc}") from exc
        for name in fields:
            if name not in PLACEHOLDERS:
                raise TemplateError(f"{source}: {path}: unknown placeholder {{{name}}} "
                                    f"(known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})")
    elif isinstance(node, dict):
        for key, value in node.items():
            _check(value, f"{path}.{key}" if path else str(key), source)


def load_templates(path: Path | None = None) -> Templates:
    """Load and check the templates; ``None`` loads the ones shipped in the package."""
    source, raw = read_yaml(path, "templates.yaml", "templates", TemplateError)
    try:
        spec = TemplateFile.model_validate(raw)
    except ValidationError as exc:
        detail = describe(exc)
        raise TemplateError(f"{source}: {detail}") from exc
    _check(spec.model_dump(exclude_none=True), "", source)
    missing = [lang for lang in ("zh-CN", "en") if lang not in spec.default or not spec.default[lang].alert]
    if missing:
        raise TemplateError(f"{source}: default.{missing[0]}.alert: missing (every language needs an alert text)")
    return Templates(spec)


@cache
def shipped() -> Templates:
    """The packaged templates, read on first use (no I/O at import)."""
    return load_templates(None)
