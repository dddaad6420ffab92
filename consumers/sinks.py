"""Local sink: a JSON line per delivered message in ``<sink_dir>/<channel>.jsonl``.

Stands where a provider will stand (the real SMS, push and grid adapters are a later
stage); the demo and the tests read what "arrived" from these files.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from consumers.notifier import Outcome, Result
from warning.models import DeliveryJob


class FileSink:
    def __init__(self, channel: str, sink_dir: Path) -> None:
        self.channel = channel
        sink_dir.mkdir(parents=True, exist_ok=True)
        self.path = sink_dir / f"{channel}.jsonl"
        # One write() per batch on an O_APPEND descriptor: several consumer processes can
        # share the file without their lines interleaving (a buffered file would split writes).
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def send_batch(self, jobs: Sequence[DeliveryJob]) -> list[Result]:
        now = time.time()
        lines = b"".join(
            orjson.dumps({"delivery_id": job.delivery_id, "alert_id": job.alert_id, "version": job.version,
                          "tier": job.tier, "msg_type": job.msg_type, "recipient": job.recipient,
                          "address": job.address, "language": job.language, "text": job.text,
                          "received_at": now}) + b"\n"
            for job in jobs)
        os.write(self._fd, lines)
        return [Result(Outcome.delivered, provider_id=job.delivery_id) for job in jobs]

    async def handed_off(self, jobs: Sequence[DeliveryJob]) -> set[str]:
        """The sink is the provider here, and its file says what it took (a line a killed
        consumer left half-written does not count: that job is sent again)."""
        wanted = {job.delivery_id for job in jobs}
        return {str(m["delivery_id"]) for m in read_sink(self.path) if m.get("delivery_id") in wanted}

    async def close(self) -> None:
        os.close(self._fd)


def read_sink(path: Path) -> list[dict[str, object]]:
    """Every message a sink received (for the demo summary and tests). A line a killed
    consumer left half-written is not a delivery: it is skipped (the job is sent again)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        if line.strip():
            try:
                out.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
    return out
