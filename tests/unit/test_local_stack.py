"""The local stack's own helpers (deploy/local/stack.py is a script: loaded by path)."""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def stack_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("local_stack", ROOT / "deploy" / "local" / "stack.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_cluster_id_never_starts_with_a_dash_and_is_a_uuid_in_url_safe_base64() -> None:
    """Kafka's StorageTool read an id starting with '-' as an option: 1 fresh stack in 64 did not start."""
    cluster_id = stack_module().cluster_id
    ids = [cluster_id() for _ in range(3000)]  # ~47 would start with '-' unguarded
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(i) == 22 and len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)
