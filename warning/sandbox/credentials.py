"""The sandbox's key material, created once per state directory and shared by file.

Adapters and the sandbox may start at the same moment: a file is written to a temporary
name and hard-linked into place, which fails if another process got there first, so
everyone ends up with the same key.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

SERVICE_ACCOUNT = "fcm-service-account.json"
VAPID_KEY = "vapid-private.pem"
PROJECT_ID = "warning-sandbox"


def _create_once(path: Path, content: bytes) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent)
    try:
        os.write(fd, content)
        os.close(fd)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


def ensure(state: Path, sandbox_url: str) -> None:
    """A service-account JSON whose token_uri is the sandbox, and a VAPID key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    _create_once(state / SERVICE_ACCOUNT, orjson.dumps({
        "type": "service_account", "project_id": PROJECT_ID, "private_key_id": "sandbox",
        "private_key": pem, "client_email": f"dispatch@{PROJECT_ID}.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": f"{sandbox_url}/token"}))
    vapid = ec.generate_private_key(ec.SECP256R1())
    _create_once(state / VAPID_KEY, vapid.private_bytes(serialization.Encoding.PEM,
                                                        serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))


def public_pem(state: Path) -> bytes:
    info = orjson.loads((state / SERVICE_ACCOUNT).read_bytes())
    key = serialization.load_pem_private_key(info["private_key"].encode(), None)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
