"""Reading the project's YAML files (rule packs, directories) with errors that name the file."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path | None, packaged: str, what: str, error: type[ValueError]) -> tuple[str, Any]:
    """(source name, parsed YAML) of ``path``, or of ``warning/data/<packaged>`` when None."""
    if path is None:
        source = f"warning/data/{packaged}"
        text = resources.files("warning.data").joinpath(packaged).read_text("utf-8")
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise error(f"{path}: cannot read {what}: {exc.strerror}") from exc
    try:
        return source, yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {exc}") from exc


def describe(exc: ValidationError) -> str:
    """A validation error as ``field.path: message; …`` (what every loader's error names)."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


def load_model(model: type[M], path: Path | None, packaged: str, what: str, error: type[ValueError]) -> M:
    """A YAML file checked against its model; the error names the file and the field."""
    source, raw = read_yaml(path, packaged, what, error)
    try:
        return model.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        raise error(f"{source}: {describe(exc)}") from exc
