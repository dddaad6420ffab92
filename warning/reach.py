"""Seconds-to-reach as a log-bucketed histogram: O(1) memory per alert at any fan-out.

Bucket b holds latencies in [1.05**b, 1.05**(b+1)) milliseconds, so a percentile read
back is within 5 % of the true value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

_BASE = 1.05


def bucket(latency_s: float) -> int:
    ms = max(latency_s * 1000.0, 1.0)
    return int(math.log(ms, _BASE))


def percentiles(histogram: Mapping[int, int], quantiles: tuple[float, ...] = (0.5, 0.9, 0.99)) -> list[float | None]:
    """Upper bucket edge (in seconds) at each quantile; None where nothing was handed off."""
    total = sum(histogram.values())
    if total == 0:
        return [None for _ in quantiles]
    ordered = sorted(histogram.items())
    out: list[float | None] = []
    for q in quantiles:
        need = q * total
        seen = 0
        for b, count in ordered:
            seen += count
            if seen >= need:
                out.append(round(_BASE ** (b + 1) / 1000.0, 4))
                break
    return out


def upper_edge_s(bucket_index: int) -> float:
    """The bucket's upper edge in seconds (what a Prometheus histogram bucket is labelled by)."""
    return round(_BASE ** (bucket_index + 1) / 1000.0, 4)
