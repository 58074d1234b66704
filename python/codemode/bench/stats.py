"""Summaries of samples: percentiles, medians and each target's ratio to the fastest."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between closest ranks."""
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarise(samples: Sequence[float]) -> dict[str, float | int]:
    """Median, p5/p25/p75/p95, min, mean (ms) and count of a non-empty list of samples (ms)."""
    return {
        "median_ms": statistics.median(samples),
        "p5_ms": percentile(samples, 5),
        "p25_ms": percentile(samples, 25),
        "p75_ms": percentile(samples, 75),
        "p95_ms": percentile(samples, 95),
        "min_ms": min(samples),
        "mean_ms": statistics.fmean(samples),
        "runs": len(samples),
    }


def ratios_to_fastest(medians: Mapping[str, float | None]) -> dict[str, float | None]:
    """Each target's median over the smallest median of the workload (the fastest is 1.0);
    None for a target without a median (failed or not run)."""
    measured = [m for m in medians.values() if m is not None and m > 0]
    if not measured:
        return {target: None for target in medians}
    fastest = min(measured)
    return {target: (m / fastest if m is not None and m > 0 else None) for target, m in medians.items()}


def fastest(medians: Mapping[str, float | None]) -> str | None:
    """The target with the smallest median, or None if none has one."""
    measured = {t: m for t, m in medians.items() if m is not None}
    return min(measured, key=lambda t: measured[t]) if measured else None


def format_ms(value: float) -> str:
    """A duration in ms with about three significant digits (``0.062``, ``6.65``, ``231``)."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def medians_of(workload_results: Mapping[str, Mapping[str, Any]]) -> dict[str, float | None]:
    """``{target: median_ms or None}`` of one workload's results in a report."""
    return {target: result.get("median_ms") for target, result in workload_results.items()}
