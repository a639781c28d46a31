"""Seconds per epoch by depth for the ETA: measured, the sweep's earlier jobs, a line."""

from __future__ import annotations

import pytest

from vitbn_sweep.epoch_times import EpochTimes


def test_this_commands_depth_first_then_earlier_jobs_scaled_to_its_speed() -> None:
    earlier = [(1, [10.0, 10.0]), (2, [20.0]), (4, [40.0]), (4, [44.0])]
    times = EpochTimes.build(now=[(2, [30.0, 30.0])], earlier=earlier)
    assert times.scale == pytest.approx(1.5)  # depth 2: 30 s now against 20 s then
    assert times.at(2) == pytest.approx(30.0)  # measured by this command
    assert times.at(4) == pytest.approx(42.0 * 1.5)  # earlier jobs' mean, scaled
    assert times.at(1) == pytest.approx(15.0)
    assert times.overall == pytest.approx(30.0)  # this command's epochs


def test_an_untimed_depth_follows_a_line_in_depth() -> None:
    times = EpochTimes.build(now=[(1, [12.0]), (3, [32.0])])  # 2 + 10 per depth
    assert times.at(7) == pytest.approx(72.0) and times.at(2) == pytest.approx(22.0)
    one = EpochTimes.build(now=[(2, [20.0])])  # one depth: proportional to depth
    assert one.at(6) == pytest.approx(60.0)
    noisy = EpochTimes.build(now=[(1, [30.0]), (2, [10.0])])  # a falling line: the nearest
    assert noisy.at(7) == pytest.approx(10.0)


def test_no_shared_depth_leaves_earlier_jobs_unscaled_and_nothing_timed_gives_none() -> None:
    times = EpochTimes.build(now=[], earlier=[(3, [90.0])])
    assert times.scale == 1.0 and times.at(3) == 90.0 and times.overall == 90.0
    assert times.at(6) == pytest.approx(180.0)
    empty = EpochTimes.build(now=[(None, [])])
    assert empty.at(2) is None and empty.at(None) is None
    unknown_depth = EpochTimes.build(now=[(None, [5.0])])
    assert unknown_depth.at(4) == 5.0  # no depth known: the overall mean
