"""The t intervals: the same numbers as scipy's tests, and 95 % coverage by simulation.

Seed noise of realistic size: the spread of final test accuracy over seeds at one grid
point, measured on a real (small) sweep, is ``SEED_SD`` (see ``studies/seeding.py``);
the coverage of a t interval does not depend on the noise's scale, only on its shape, so
the figure sets the scale of the simulated accuracies and nothing else.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis.intervals import (
    NONE,
    PAIRED,
    POOLED,
    WELCH,
    diff_interval,
    paired_bounds,
    unpaired_bounds,
)
from studies.seeding import SEED_SD

EXPERIMENTS = 4000


@pytest.mark.parametrize("paired", [True, False])
@pytest.mark.parametrize("n", [2, 3, 5])
def test_coverage_of_the_95_percent_interval(n, paired):
    """4,000 simulated experiments per case, a known true difference: 93-97 % covered."""
    rng = np.random.default_rng(100 * n + paired)
    truth = 0.012
    if paired:  # same seeds: a shared data stream correlates the two models' accuracies
        shared = rng.normal(0, SEED_SD * 0.6, (EXPERIMENTS, n))
        a = 0.95 + truth + shared + rng.normal(0, SEED_SD * 0.8, (EXPERIMENTS, n))
        b = 0.95 + shared + rng.normal(0, SEED_SD * 0.8, (EXPERIMENTS, n))
        low, high = paired_bounds(a - b, 0.95)
    else:  # other seeds: independent, and the candidate's spread 1.5 x the baseline's
        a = rng.normal(0.95 + truth, SEED_SD * 1.2, (EXPERIMENTS, n))
        b = rng.normal(0.95, SEED_SD * 0.8, (EXPERIMENTS, n))
        low, high = unpaired_bounds(a, b, 0.95)
    covered = np.mean((low < truth) & (truth < high))
    assert 0.93 <= covered <= 0.97, covered


def test_welch_coverage_with_unequal_seed_counts():
    rng = np.random.default_rng(7)
    a = rng.normal(0.01, SEED_SD, (EXPERIMENTS, 5))
    b = rng.normal(0.0, SEED_SD, (EXPERIMENTS, 3))
    low, high = unpaired_bounds(a, b, 0.95)
    assert 0.93 <= np.mean((low < 0.01) & (0.01 < high)) <= 0.97


def test_the_same_numbers_as_scipy():
    a, b = [0.91, 0.93, 0.94, 0.92], [0.90, 0.905, 0.93, 0.90]
    paired = diff_interval(a, b, level=0.9, seeds_a=[0, 1, 2, 3], seeds_b=[0, 1, 2, 3])
    expected = stats.ttest_rel(a, b).confidence_interval(0.9)
    assert paired.method == PAIRED and paired.df == 3
    assert (paired.low, paired.high) == pytest.approx(tuple(expected))
    pooled = diff_interval(a, b, level=0.95, seeds_a=[0, 1, 2, 3], seeds_b=[4, 5, 6, 7])
    expected = stats.ttest_ind(a, b, equal_var=True).confidence_interval(0.95)
    assert pooled.method == POOLED and (pooled.low, pooled.high) == pytest.approx(tuple(expected))
    welch = diff_interval(a, b[:3], level=0.95)
    expected = stats.ttest_ind(a, b[:3], equal_var=False).confidence_interval(0.95)
    assert welch.method == WELCH and (welch.low, welch.high) == pytest.approx(tuple(expected))
    assert welch.diff == pytest.approx(np.mean(a) - np.mean(b[:3]))


def test_pairs_are_matched_by_seed_not_by_order():
    a, b = [0.80, 0.90, 0.85], [0.79, 0.84, 0.89]
    shuffled = diff_interval(a, b, level=0.95, seeds_a=[0, 1, 2], seeds_b=[0, 2, 1])
    # Matched by seed, every difference is +0.01: no spread, the interval is the point.
    assert shuffled.method == PAIRED
    assert shuffled.low == pytest.approx(0.01) and shuffled.high == pytest.approx(0.01)


def test_no_interval_without_two_seeds_per_model():
    one = diff_interval([0.9], [0.8, 0.81], level=0.95, seeds_a=[0], seeds_b=[0, 1])
    assert one.method == NONE and np.isnan(one.low) and one.diff == pytest.approx(0.095)
    empty = diff_interval([], [0.8], level=0.95)
    assert empty.method == NONE and np.isnan(empty.diff)


def test_intervals_are_deterministic_and_scale_with_the_level():
    a, b = [0.9, 0.92, 0.95], [0.88, 0.9, 0.9]
    wide, narrow = (diff_interval(a, b, level=lv) for lv in (0.99, 0.8))
    assert wide == diff_interval(a, b, level=0.99)
    assert wide.low < narrow.low < narrow.high < wide.high
