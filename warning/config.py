"""One settings object, from the environment and an optional YAML file.

Nothing is read at import time: call :func:`load_settings` from a bootstrap. A bad value
fails at startup with :class:`ConfigError` naming the source (file or environment) and
the field, never later in the middle of a warning.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

CHANNELS = ("sms", "push", "grid", "cell_broadcast")


AudienceRole = Literal["officer", "grid_worker", "grid_endpoint", "resident"]
DRILL_AUDIENCE: tuple[AudienceRole, ...] = ("officer", "grid_worker")


def known_time_zone(value: str) -> str:
    """An IANA time zone name, or a ValueError that says what was wrong (for validators)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Shanghai)") from exc
    return value


class ConfigError(ValueError):
    """Configuration that cannot run; the message names the file (or env) and field."""


class Settings(BaseSettings):
    """Every knob of the pipeline. Environment variables are ``WARNING_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="WARNING_", extra="forbid", populate_by_name=True)

    kafka_bootstrap: str = "127.0.0.1:39092"
    redis_url: str = "redis://127.0.0.1:36379/0"
    api_port: int = Field(default=38080, ge=1, le=65535)

    # Namespaces, so several pipelines (or tests) can share one Kafka and one Redis.
    topic_prefix: str = ""
    redis_prefix: str = "warning"
    app_id: str = "warning"
    partitions: int = Field(default=4, ge=1, le=256)
    # A crashed worker's partitions move to a live one after this long (Kafka's default
    # 45-60 s is a minute without warnings; the broker's floor is 6 s).
    worker_session_timeout_s: float = Field(default=10.0, ge=6, le=300)
    # Copies of every topic the pipeline creates (its own and Faust's changelogs), and how
    # many must have a write before the broker acknowledges it (acks=all). One broker: 1 / 1;
    # a cluster: 3 / 2, so one broker may be down and no acknowledged write is lost.
    replication_factor: int = Field(default=1, ge=1, le=16)
    min_insync_replicas: int = Field(default=1, ge=1, le=16)
    # Redis with a replica (Sentinel): enqueues and the *sending* / *sent* marks wait until
    # this many replicas have them (WAIT), at most the timeout; 0 = acknowledged by the master.
    redis_wait_replicas: int = Field(default=0, ge=0, le=5)
    redis_wait_timeout_ms: int = Field(default=100, ge=1, le=10_000)
    # Lanes per channel queue (recipient-hashed): on Redis Cluster, one channel's traffic
    # spreads over as many slots; at least the number of masters. Changed only when drained.
    shard_lanes: int = Field(default=1, ge=1, le=256)
    # Warm copies of the Faust tables on other workers: a failover restores from them
    # instead of replaying the changelog (0: the new owner replays it).
    table_standby_replicas: int = Field(default=0, ge=0, le=8)

    rules_file: Path | None = None  # None: the default pack shipped in the package
    # Message texts per hazard, tier, channel and language (None: warning/data/templates.yaml)
    templates_file: Path | None = None
    # Which audience segments wait for a second person (None: warning/data/release-policy.yaml)
    release_policy_file: Path | None = None
    # Closed alerts (expired, cancelled) stay queryable this long, with their report
    history_days: float = Field(default=90, gt=0, le=3650)
    # How long an officer's request waits for the lifecycle worker to apply the command
    control_timeout_s: float = Field(default=15.0, gt=0, le=300)
    # Who a drill reaches unless it names its audience: roles among officer, grid_worker,
    # grid_endpoint, resident (residents only when a drill names them explicitly)
    drill_audience: list[AudienceRole] = Field(default_factory=lambda: list(DRILL_AUDIENCE))
    directory_file: Path | None = None  # None: the bundled demo directory
    # What receives the messages each channel sends (per channel, ``auto`` picks):
    #   live    - the real provider (Twilio, FCM / Web Push, the grids' own HTTPS endpoints);
    #   sandbox - local servers speaking each provider's HTTP API (`warning sandbox`);
    #   sink    - append to <sink_dir>/<channel>.jsonl (benchmarks of the queues alone).
    # ``auto`` is live for a channel whose credentials are set, sandbox otherwise.
    providers: Literal["auto", "sandbox", "sink"] = "auto"
    sink_dir: Path = Path(".run/sinks")  # also where the sandbox records what it received
    # Faust keeps a directory per app even with in-memory tables (default: <app_id>-data in
    # the working directory, one per test or bench run); they live here instead.
    worker_data_dir: Path = Path(".run/faust")
    sandbox_port: int = Field(default=38081, ge=1, le=65535)
    sandbox_host: str = "127.0.0.1"  # where the sandbox is reached (compose: its service name); it listens there
    # Production: every channel must use its live provider (the WarningSandboxProviderInUse alert)
    require_live_providers: bool = False
    # How long a command waits for Kafka to answer at all (long-running processes keep retrying)
    kafka_connect_timeout_s: float = Field(default=30.0, gt=0, le=600)
    # How providers reach this deployment's API (Twilio callbacks are signed over this URL).
    public_url: str = ""  # empty: http://127.0.0.1:<api_port>

    # Evaluate: window state reaches the changelog after this many messages of a partition,
    # or this many seconds; a crash before that replays the messages (nothing is lost).
    evaluate_flush_events: int = Field(default=200, ge=1)
    evaluate_flush_s: float = Field(default=5.0, gt=0, le=300)

    # Alert lifecycle
    alert_ttl_s: float = Field(default=6 * 3600, gt=0)  # expiry after the latest version
    downgrade_hold_s: float = Field(default=1800, ge=0)  # below a tier this long to drop

    # Delivery
    # Messages per second per sender (a channel), shared by all its consumers; the burst is
    # one second's worth. Set them to what your provider account allows.
    rate_limits: dict[str, float] = Field(default_factory=lambda: {"sms": 100.0, "push": 1000.0, "grid": 200.0})
    retry_max_attempts: int = Field(default=5, ge=1, le=50)
    retry_base_s: float = Field(default=1.0, gt=0)
    retry_cap_s: float = Field(default=60.0, gt=0)
    retry_deadline_s: float = Field(default=300.0, gt=0)  # after the alert's issue; then next channel
    consumer_batch: int = Field(default=500, ge=1, le=10_000)
    visibility_timeout_s: float = Field(default=30, gt=0)
    enqueue_batch: int = Field(default=500, ge=1, le=5_000)  # jobs per enqueue script call
    dispatch_batch: int = Field(default=200, ge=1, le=10_000)  # signals stepped and fanned out together
    # Residents per work unit: a bigger audience is cut into units that every worker enqueues
    # in parallel (pipeline/units.py); up to this many, the owning worker enqueues inline.
    fanout_unit_residents: int = Field(default=50_000, ge=100, le=10_000_000)
    # How long the worker's Kafka producer waits to fill a batch. 0 suits warnings (each hop
    # sends at once); 5 ms measured +30-40 % alerts/s in a 20,000-alert burst and +5 ms p50
    # from reading to webhook: for deployments where storms, not single crossings, matter.
    worker_producer_linger_ms: float = Field(default=0.0, ge=0, le=1000)
    # The most bytes one partition's batch holds in the worker's producer. aiokafka keeps one
    # open batch per partition and makes the next record wait for the request in flight once
    # it is full, so at its default (16 KiB, ~10 versions) a batch of versions or changelog
    # writes went out as a chain of small requests, each waiting for the one before.
    worker_producer_batch_bytes: int = Field(default=262144, ge=1024, le=1_000_000)

    # CAP output (every alert version renders to CAP 1.2)
    cap_sender: str = "warning@early-warning.local"
    cap_identifier_prefix: str = ""  # prepended to "<alert_id>.v<version>"
    cap_languages: list[str] = Field(default_factory=lambda: ["zh-CN", "en"])
    cap_timezone: str = "Asia/Shanghai"
    # blue → Minor and yellow → Moderate match CMA's CAP; orange and red are our choice.
    cap_severity: dict[str, str] = Field(default_factory=lambda: {
        "blue": "Minor", "yellow": "Moderate", "orange": "Severe", "red": "Extreme"})

    # SMS (Twilio). Credentials from env (TWILIO_* or WARNING_TWILIO_*) or secret files.
    twilio_account_sid: str | None = Field(default=None, validation_alias=AliasChoices(
        "warning_twilio_account_sid", "twilio_account_sid"))
    twilio_auth_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices(
        "warning_twilio_auth_token", "twilio_auth_token"))
    twilio_messaging_service_sid: str | None = Field(default=None, validation_alias=AliasChoices(
        "warning_twilio_messaging_service_sid", "twilio_messaging_service_sid"))
    twilio_from: str | None = Field(default=None, validation_alias=AliasChoices(
        "warning_twilio_from", "twilio_from_number"))
    sms_max_segments: int = Field(default=4, ge=1, le=10)
    # No delivery receipt this long after Twilio took a message: the next channel gets it.
    sms_receipt_timeout_s: float = Field(default=300.0, gt=0)
    # Who carries SMS: Twilio, or the carriers' own gateways over SMPP 3.4 (smpp_gateways_file).
    sms_provider: Literal["twilio", "smpp"] = "twilio"
    # The SMPP gateways and their number ranges (None: warning/data/smpp-gateways.yaml, which
    # binds every gateway to the sandbox SMSC). Naming a file makes SMPP live under ``auto``.
    smpp_gateways_file: Path | None = None
    sandbox_smpp_port: int = Field(default=38082, ge=1, le=65535)  # the sandbox SMSC

    # Cell broadcast: one message per alert version and area to a Cell Broadcast Centre over
    # its ECBE REST interface (osmo-cbc's shape). None: the sandbox's CBC.
    cbc_url: str | None = None
    cell_broadcast_file: Path | None = None  # tiers, CBS message identifiers (None: warning/data/cell-broadcast.yaml)

    # App push: FCM HTTP v1 (a service-account JSON file) and Web Push (a VAPID key).
    fcm_service_account_file: Path | None = None
    fcm_base_url: str = "https://fcm.googleapis.com"
    vapid_private_key: SecretStr | None = None  # PEM, or base64url of the raw key
    vapid_subject: str = "mailto:duty@early-warning.local"

    # Community-grid webhooks: HMAC-SHA256 over "<timestamp>.<body>" with this secret.
    grid_webhook_secret: SecretStr | None = None
    provider_timeout_s: float = Field(default=10.0, gt=0, le=120)

    # Escalation: an alert nobody acknowledges goes up the chain, one level per timeout of
    # its tier (a tier without a timeout does not escalate). Each level's duty officers whose
    # jurisdiction covers the alert are told on their own channels.
    escalation_levels: list[str] = Field(default_factory=lambda: ["township", "district", "city", "province"])
    escalation_timeouts_s: dict[str, float] = Field(default_factory=lambda: {
        "red": 120.0, "orange": 300.0, "yellow": 900.0})
    # A grid counts as reached when this many of its grid workers confirmed (or all, if fewer).
    grid_quorum: int = Field(default=1, ge=1)

    # API
    api_max_body_bytes: int = Field(default=5_000_000, ge=1024)
    api_max_records: int = Field(default=10_000, ge=1)
    console_refresh_s: float = Field(default=1.0, gt=0, le=60)  # how often the console's stream looks

    log_level: str = "INFO"
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"  # worker and consumers (warning/eventloop.py)
    # Allocations between two young-generation collections in the worker, consumers, API and
    # escalator once they are up (warning/heap.py); Python's own is 700.
    gc_threshold: int = Field(default=20_000, ge=100, le=1_000_000)
    faust_log_level: str = "WARNING"  # Faust's own machinery (rebalances, recovery): INFO to debug a stall

    @field_validator("kafka_bootstrap")
    @classmethod
    def _host_port(cls, value: str) -> str:
        for address in value.split(","):
            host, _, port = address.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port], got {value!r}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        from warning.redis_client import CLUSTER_SCHEME, SENTINEL_SCHEME, parse_cluster, parse_sentinel

        if value.startswith(SENTINEL_SCHEME):
            parse_sentinel(value)  # a ValueError names what is wrong
        elif value.startswith(CLUSTER_SCHEME):
            parse_cluster(value)
        elif not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected redis://host:port/db, redis+sentinel://host:port/SERVICE/DB or "
                             f"redis+cluster://host:port[,host:port…], got {value!r}")
        return value

    @field_validator("cap_severity")
    @classmethod
    def _severities(cls, value: dict[str, str]) -> dict[str, str]:
        allowed = {"Extreme", "Severe", "Moderate", "Minor", "Unknown"}
        tiers = {"blue", "yellow", "orange", "red"}
        if set(value) != tiers:
            raise ValueError(f"needs exactly the tiers {sorted(tiers)}, got {sorted(value)}")
        bad = {k: v for k, v in value.items() if v not in allowed}
        if bad:
            raise ValueError(f"CAP severities must be one of {sorted(allowed)}: {bad}")
        return value

    @field_validator("cap_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return known_time_zone(value)

    @model_validator(mode="after")
    def _insync_within_copies(self) -> Settings:
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(f"min_insync_replicas ({self.min_insync_replicas}) cannot exceed replication_factor "
                             f"({self.replication_factor}): every write would be refused")
        return self

    @model_validator(mode="after")
    def _sms_sender(self) -> Settings:
        if self.sms_provider == "twilio" and self.provider_mode("sms") == "live" and not (
                self.twilio_messaging_service_sid or self.twilio_from):
            raise ValueError("live Twilio SMS needs twilio_messaging_service_sid or twilio_from "
                             "(env TWILIO_MESSAGING_SERVICE_SID / TWILIO_FROM_NUMBER)")
        return self

    @property
    def api_url(self) -> str:
        return (self.public_url or f"http://127.0.0.1:{self.api_port}").rstrip("/")

    @property
    def sandbox_url(self) -> str:
        return f"http://{self.sandbox_host}:{self.sandbox_port}"

    def provider_mode(self, channel: str) -> str:
        """live, sandbox or sink for one channel (see ``providers``)."""
        if self.providers != "auto":
            return self.providers
        twilio = bool(self.twilio_account_sid and self.twilio_auth_token)
        live = {"sms": bool(self.smpp_gateways_file) if self.sms_provider == "smpp" else twilio,
                "cell_broadcast": bool(self.cbc_url),
                "push": bool(self.fcm_service_account_file or self.vapid_private_key),
                "grid": bool(self.grid_webhook_secret and self.grid_webhook_secret.get_secret_value())}
        return "live" if live.get(channel) else "sandbox"

    @property
    def faust_broker(self) -> str:
        return ";".join(f"kafka://{a.strip()}" for a in self.kafka_bootstrap.split(","))


def _describe(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "(root)"
        env = f" (env WARNING_{field.upper()})" if source == "environment" and err["loc"] else ""
        lines.append(f"{source}: field {field}{env}: {err['msg']}")
    return "; ".join(lines)


def load_settings(config_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Build settings: explicit overrides > environment > YAML file > defaults.

    The file is ``config_file`` or ``$WARNING_CONFIG``; its keys are the field names.
    """
    path = config_file or os.environ.get("WARNING_CONFIG")
    file_values: dict[str, Any] = {}
    source = "environment"
    if path:
        source = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of setting names to values")
        file_values = loaded or {}
        unknown = sorted(set(file_values) - set(Settings.model_fields))
        if unknown:
            raise ConfigError(f"{path}: unknown field(s) {', '.join(unknown)}")
    try:
        # Environment wins over the file: pydantic-settings gives init kwargs priority,
        # so pass file values only where no env var is set.
        env_set = {name for name in Settings.model_fields if f"WARNING_{name.upper()}" in os.environ}
        init = {k: v for k, v in file_values.items() if k not in env_set}
        init.update(overrides)
        secrets = os.environ.get("WARNING_SECRETS_DIR")  # one file per secret, named like its env var
        return Settings(**init, _secrets_dir=secrets) if secrets else Settings(**init)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from exc
