"""What the sandbox received, one JSON line per message in ``<sink_dir>/<channel>.jsonl``
(the same files and shape the local sinks write, so demos and tests read either)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson


class Recorder:
    def __init__(self, sink_dir: Path) -> None:
        sink_dir.mkdir(parents=True, exist_ok=True)
        self.sink_dir = sink_dir
        self._fds: dict[str, int] = {}

    def record(self, channel: str, entry: dict[str, Any]) -> None:
        fd = self._fds.get(channel)
        if fd is None:
            fd = self._fds[channel] = os.open(self.sink_dir / f"{channel}.jsonl",
                                              os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, orjson.dumps({**entry, "received_at": time.time()}) + b"\n")

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
