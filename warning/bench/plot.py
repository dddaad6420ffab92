"""The latency distributions of a bench run as one PNG (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _cdf(ax: Any, samples: list[float], label: str) -> None:
    if samples:
        ys = [(i + 1) / len(samples) for i in range(len(samples))]
        ax.plot(sorted(samples), ys, label=label)


def plot(results: dict[str, dict[str, Any]], out: Path) -> Path | None:
    panels = [(name, r) for name, r in results.items() if name in ("latency", "peer", "reach")]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), squeeze=False)
    for ax, (name, result) in zip(axes[0], panels, strict=True):
        last = result.get("runs", [result])[-1]
        if name == "latency":
            _cdf(ax, last.get("samples_ms", []), "ours: reading → grid webhook")
            ax.set_title(f"latency at 20/s (p99 {result.get('p99_ms')} ms)")
        elif name == "peer":
            _cdf(ax, last.get("ours_samples_ms", []), f"ours ({result.get('ours_per_s')}/s)")
            _cdf(ax, last.get("peer_samples_ms", []), f"Alertmanager ({result.get('peer_per_s')}/s)")
            ax.set_title(f"{result.get('alerts')}-alert burst → one webhook each")
        else:
            samples = [s for run in result.get("runs", []) for s in run.get("first_samples_ms", [])]
            _cdf(ax, samples, "crossing → first handoff")
            ax.set_title(f"reach under 5,000 readings/s (p50 {result.get('first_p50_ms')} ms)")
        ax.set_xscale("log")
        ax.set_xlabel("milliseconds (log)")
        ax.set_ylabel("fraction of alerts")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
