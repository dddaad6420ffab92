"""A synthetic city for benchmarks: N grids on a lattice, one station at each grid's centre,
an optional webhook endpoint per grid, and directories for the audiences a scenario needs."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from warning.bench.harness import ROOT
from warning.runner import free_port

BENCH_DIR = ROOT / ".run" / "bench"
COLUMNS = 200
SIZE = 0.001  # degrees: ~100 m grids
TIERS = ("blue", "yellow", "orange", "red")


def grid_id(i: int) -> str:
    return f"440305{i:06d}"


def centre(i: int) -> tuple[float, float]:
    """(lat, lon) of grid i's centre."""
    return 22.5 + (i // COLUMNS) * SIZE + SIZE / 2, 113.8 + (i % COLUMNS) * SIZE + SIZE / 2


def grids(n: int, endpoint_base: str | None = None) -> bytes:
    features = []
    for i in range(n):
        lat, lon = 22.5 + (i // COLUMNS) * SIZE, 113.8 + (i % COLUMNS) * SIZE
        props: dict[str, Any] = {"grid_id": grid_id(i), "name": f"网格{i}"}
        if endpoint_base:
            props["endpoint"] = f"{endpoint_base}/{grid_id(i)}"
        features.append({"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": [[
            [lon, lat], [lon + SIZE, lat], [lon + SIZE, lat + SIZE], [lon, lat + SIZE], [lon, lat]]]}})
    return orjson.dumps({"type": "FeatureCollection", "features": features})


def directory(name: str, audience: dict[str, Any] | None = None, stations: dict[str, str] | None = None) -> Path:
    """Only ``stations`` (id -> area; other readings carry their coordinates, and their grid
    is their area); the audience per tier is ``audience`` (default: the project's)."""
    path = BENCH_DIR / f"directory-{name}.yaml"
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"city": {"code": "440300", "name": "深圳市"}, "areas": [],
                           "stations": [{"id": sid, "area": area} for sid, area in (stations or {}).items()]}
    if audience is not None:
        doc["audience"] = {tier: audience for tier in TIERS}
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return path


GRID_ENDPOINTS_ONLY = {"grid_workers": False, "grid_endpoints": True, "officers": [], "residents": "none"}


def crossing(i: int, tag: str, value: float = 80.0) -> dict[str, Any]:
    """A gas reading over the red threshold at grid i's station."""
    lat, lon = centre(i)
    return {"station_id": f"{tag}-{i}", "kind": "gas_lel", "value": value, "unit": "%LEL",
            "observed_at": datetime.now(UTC).isoformat(), "lat": lat, "lon": lon}


class WebhookSink:
    """The shared webhook sink as a process of its own."""

    def __init__(self, out: Path) -> None:
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)  # a scenario run alone on a fresh checkout
        out.unlink(missing_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "warning.bench.webhook_sink", str(self.port), str(out)])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise TimeoutError("the webhook sink did not start")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)

    def __enter__(self) -> WebhookSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def sample(values: list[float], at_most: int = 2000) -> list[float]:
    """Evenly spaced order statistics, for plots (the JSON stays small)."""
    ordered = sorted(values)
    if len(ordered) <= at_most:
        return [round(v, 3) for v in ordered]
    return [round(ordered[int(i * (len(ordered) - 1) / (at_most - 1))], 3) for i in range(at_most)]
