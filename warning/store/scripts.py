"""Lua scripts live in ``.lua`` files beside the module that runs them."""

from __future__ import annotations

from importlib import resources


def lua(name: str, package: str = "warning.store") -> str:
    """The source of ``<package>/<name>.lua``, read when a repository is made (never at import)."""
    return resources.files(package).joinpath(f"{name}.lua").read_text(encoding="utf-8")
