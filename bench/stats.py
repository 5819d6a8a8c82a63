"""Percentiles and ratios, the only statistics the suite reports."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0..100), linear between the closest ranks; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values_ms: Sequence[float]) -> dict:
    """Count, p50, p90, p99 and max of latencies in milliseconds (rounded to 0.01 ms)."""
    out: dict = {"n": len(values_ms)}
    for name, p in (("p50_ms", 50), ("p90_ms", 90), ("p99_ms", 99), ("max_ms", 100)):
        value = percentile(values_ms, p)
        out[name] = None if value is None else round(value, 2)
    return out


def ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or not reference:
        return None
    return round(value / reference, 2)


def median(values: Sequence[float]) -> float | None:
    return percentile(values, 50)
