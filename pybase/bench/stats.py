"""The few statistics the bench reports: medians, percentiles, geometric means of ratios."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between the closest ranks (numpy's default), so
    that p95 of a few dozen runs is not simply the maximum."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0-100")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def geometric_mean(values: Sequence[float]) -> float:
    """The mean of ratios: a workload twice as fast and one twice as slow average to 1.0."""
    if not values or any(v <= 0 for v in values):
        raise ValueError("geometric mean needs positive values")
    return math.exp(sum(math.log(v) for v in values) / len(values))


def noise_band(same: Sequence[float], z: float = 1.96) -> float:
    """How far a geometric mean of ratios strays by chance alone in one run, from the ratios of
    one build against itself (an A/A comparison): z standard errors of the mean log-ratio, as a
    fraction (0.02: a geometric mean between 0.98 and 1.02 cannot be told from 1). It assumes
    the benchmarks' noise is independent, which alternating the contenders makes closer to true.
    """
    if len(same) < 2 or any(r <= 0 for r in same):
        raise ValueError("a noise band needs two or more positive ratios")
    logs = [math.log(r) for r in same]
    return math.exp(z * statistics.stdev(logs) / math.sqrt(len(logs))) - 1


@dataclass(frozen=True)
class Summary:
    """Median and p95 of repeated timings, in seconds."""

    median: float
    p95: float
    runs: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        return cls(statistics.median(samples), percentile(samples, 95), len(samples))


@dataclass(frozen=True)
class RatioSpread:
    """Geometric mean of per-workload ratios and their range."""

    mean: float
    low: float
    high: float

    @classmethod
    def of(cls, ratios: Sequence[float]) -> RatioSpread:
        return cls(geometric_mean(ratios), min(ratios), max(ratios))
