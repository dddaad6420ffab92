"""What every `warning` command shares: the container, JSON output, the console."""

from __future__ import annotations

import sys
from typing import Any

import orjson
from rich.console import Console

from warning.config import load_settings

console = Console(stderr=True)


def load_container(logging: bool = True) -> Any:
    from warning.bootstrap import bootstrap

    return bootstrap(load_settings(), logging=logging)


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")
