"""Percentile bootstrap interval of a difference in means between two small samples."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def diff_interval(
    a: Sequence[float], b: Sequence[float], *, level: float, n_boot: int, rng: np.random.Generator
) -> tuple[float, float]:
    """``level`` interval of mean(a) - mean(b), resampling each sample (seeds) independently.

    NaN, NaN when either sample has fewer than 2 values: one seed says nothing about spread.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) < 2 or len(y) < 2:
        return math.nan, math.nan
    means_x = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    means_y = y[rng.integers(0, len(y), size=(n_boot, len(y)))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means_x - means_y, [tail, 1.0 - tail])
    return float(low), float(high)
