"""Where each channel's provider is and with which credentials: live or the local sandbox.

The sandbox (``warning sandbox``) speaks each provider's HTTP API on one local port; its
credentials are fixed, published test values (like Twilio's test credentials), never
secrets. Live credentials come only from the environment or secret files (config.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from warning.config import Settings
from warning.delivery.smpp import Endpoint, SmppConfig

SANDBOX_TWILIO_SID = "AC" + "5a" * 16
SANDBOX_TWILIO_TOKEN = "sandbox-twilio-auth-token"
SANDBOX_TWILIO_FROM = "+15005550006"  # Twilio's magic "valid From" test number
SANDBOX_GRID_SECRET = b"sandbox-grid-webhook-secret"
TWILIO_API = "https://api.twilio.com"


@dataclass(frozen=True)
class TwilioAccount:
    sid: str
    token: str
    api_base: str  # https://api.twilio.com, or the sandbox
    messaging_service_sid: str | None
    from_number: str | None


def twilio_account(settings: Settings) -> TwilioAccount:
    if settings.provider_mode("sms") == "live":
        assert settings.twilio_account_sid and settings.twilio_auth_token  # provider_mode checked
        return TwilioAccount(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value(), TWILIO_API,
                             settings.twilio_messaging_service_sid, settings.twilio_from)
    return TwilioAccount(SANDBOX_TWILIO_SID, SANDBOX_TWILIO_TOKEN, settings.sandbox_url, None, SANDBOX_TWILIO_FROM)


def sandbox_state(settings: Settings) -> Path:
    """Files the sandbox and the adapters share (its service account, VAPID key, subscriptions)."""
    return settings.sink_dir / ".sandbox"


def fcm_service_account_file(settings: Settings) -> Path | None:
    if settings.provider_mode("push") == "live":
        return settings.fcm_service_account_file
    return sandbox_state(settings) / "fcm-service-account.json"


def fcm_base_url(settings: Settings) -> str:
    return settings.fcm_base_url if settings.provider_mode("push") == "live" else settings.sandbox_url


def vapid_key(settings: Settings) -> str | None:
    """The VAPID private key (PEM or base64url raw); in the sandbox a key file it shares."""
    if settings.provider_mode("push") == "live":
        return settings.vapid_private_key.get_secret_value() if settings.vapid_private_key else None
    return str(sandbox_state(settings) / "vapid-private.pem")


def grid_secret(settings: Settings) -> bytes:
    if settings.provider_mode("grid") == "live":
        assert settings.grid_webhook_secret is not None
        return settings.grid_webhook_secret.get_secret_value().encode()
    return SANDBOX_GRID_SECRET


def grid_url(settings: Settings, endpoint: str) -> str:
    """The grid's own URL when live; in the sandbox the same path under its /grid/ receiver."""
    if settings.provider_mode("grid") == "live":
        return endpoint
    parts = urlsplit(endpoint)
    return f"{settings.sandbox_url}/grid/{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def smpp_endpoints(settings: Settings, config: SmppConfig) -> dict[str, Endpoint]:
    """Where each gateway binds: its own host:port when live, the sandbox SMSC otherwise.

    The password is the gateway's secret (env or file); the sandbox's published one when
    the gateway names none (a gateway that names one is checked by the sandbox too)."""
    live = settings.provider_mode("sms") == "live"
    return {g.name: Endpoint(*((g.host, g.port) if live else (settings.sandbox_host, settings.sandbox_smpp_port)),
                             g.password(sandbox=not live)) for g in config.gateways}


def cbc_url(settings: Settings) -> str:
    """The Cell Broadcast Centre's ECBE base URL: the live one, or the sandbox's CBC."""
    if settings.provider_mode("cell_broadcast") == "live":
        assert settings.cbc_url is not None
        return settings.cbc_url
    return f"{settings.sandbox_url}/cbc"
