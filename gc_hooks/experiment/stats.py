"""Medians with 95 % bootstrap intervals, seeded so a report reads the same twice (pure Python).

Georges, Buytaert and Eeckhout (OOPSLA 2007) ask for confidence intervals over repeated whole runs;
run times are skewed (a slow run now and then), so we summarise with the median and take its interval
from a percentile bootstrap, which needs no normality. A ratio of two medians gets its interval by
resampling both groups together.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

LEVEL = 0.95
RESAMPLES = 2000
SEED = 20071021  # fixed: the same runs always give the same intervals


@dataclass(frozen=True)
class Interval:
    """A median and its confidence interval over n values."""

    median: float
    low: float
    high: float
    n: int

    def overlaps(self, other: Interval) -> bool:
        return self.low <= other.high and other.low <= self.high

    def to_json(self) -> dict[str, float | int]:
        return {"median": self.median, "low": self.low, "high": self.high, "n": self.n}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) with linear interpolation between order statistics (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _bounds(samples: list[float], level: float) -> tuple[float, float]:
    tail = (1 - level) / 2
    return percentile(samples, tail), percentile(samples, 1 - tail)


def median_interval(values: Sequence[float], level: float = LEVEL, resamples: int = RESAMPLES,
                    seed: int = SEED) -> Interval:
    """The median of `values` and its percentile-bootstrap interval (a point when n == 1)."""
    values = list(values)
    if not values:
        raise ValueError("no values")
    mid = statistics.median(values)
    if len(values) == 1 or min(values) == max(values):
        return Interval(mid, mid, mid, len(values))
    rng = random.Random(seed)
    n = len(values)
    boots = [statistics.median(rng.choices(values, k=n)) for _ in range(resamples)]
    low, high = _bounds(boots, level)
    return Interval(mid, low, high, n)


def ratio_interval(numerator: Sequence[float], denominator: Sequence[float], level: float = LEVEL,
                   resamples: int = RESAMPLES, seed: int = SEED) -> Interval | None:
    """median(numerator) / median(denominator) and its bootstrap interval; None if undefined."""
    a, b = list(numerator), list(denominator)
    if not a or not b or statistics.median(b) == 0:
        return None
    point = statistics.median(a) / statistics.median(b)
    rng = random.Random(seed)
    boots = []
    for _ in range(resamples):
        den = statistics.median(rng.choices(b, k=len(b)))
        if den != 0:
            boots.append(statistics.median(rng.choices(a, k=len(a))) / den)
    if not boots:
        return None
    low, high = _bounds(boots, level)
    return Interval(point, low, high, min(len(a), len(b)))
