"""The one webhook sink both sides of a comparison post to (`python -m warning.bench.webhook_sink PORT FILE`).

It records ``<key>\\t<receive time>`` per alert: an Alertmanager notification's alerts by
their ``seq`` label, our grid webhooks by their grid. aiohttp, one process, one write
per request: what it costs is the same for both sides.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import orjson
from aiohttp import web

from warning.bench.tail import Tail


def keys_of(body: dict[str, object]) -> list[str]:
    alerts = body.get("alerts")
    if isinstance(alerts, list):  # Alertmanager's webhook payload
        return [str(a.get("labels", {}).get("seq", "")) for a in alerts if isinstance(a, dict)]
    return [str(body.get("grid", ""))]


def app(out: Path) -> web.Application:
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        try:
            keys = keys_of(orjson.loads(body))
        except (orjson.JSONDecodeError, AttributeError):
            return web.Response(status=400)
        os.write(fd, "".join(f"{k}\t{now}\n" for k in keys).encode())
        return web.Response(text="ok")

    application = web.Application(client_max_size=16 * 1024 * 1024)
    application.router.add_post("/{tail:.*}", receive)
    application.router.add_get("/healthz", lambda _: web.Response(text="ok"))  # type: ignore[arg-type,return-value]
    return application


class Received:
    """First receive time per key (a repeat is a duplicate, counted separately by callers),
    reading only what the sink appended since the last call."""

    def __init__(self, out: Path) -> None:
        self._tail = Tail(out)
        self._got: dict[str, float] = {}

    def __call__(self) -> dict[str, float]:
        for line in self._tail().decode().splitlines():
            key, _, at = line.partition("\t")
            self._got.setdefault(key, float(at))
        return self._got


def read(out: Path) -> dict[str, float]:
    return Received(out)()


if __name__ == "__main__":
    web.run_app(app(Path(sys.argv[2])), host="127.0.0.1", port=int(sys.argv[1]), print=None,
                access_log=None)
