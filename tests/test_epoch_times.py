"""Time by depth: the line in depth, the machine rule, and the ETA's epoch times."""

from __future__ import annotations

import pytest

from vitbn_sweep.epoch_times import EpochTimes, depth_line, estimate, machine_order


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


def test_depths_one_machine_cannot_price_come_from_the_devices_others_each_scaled() -> None:
    """This command and the newest machine know depth 2 only: depth 4 comes from another
    machine of the device (measured there), scaled by its own ratio to this command."""
    other = [(1, [10.0]), (2, [15.0]), (4, [40.0])]
    times = EpochTimes.build(now=[(2, [30.0])], earlier=[(2, [20.0])], elsewhere=[other])
    assert times.scale == pytest.approx(1.5) and times.at(2) == pytest.approx(30.0)
    assert times.at(4) == pytest.approx(40.0 * 2.0)  # 30 s against its 15 s at depth 2
    alone = EpochTimes.build(now=[(2, [30.0])], earlier=[(2, [20.0])])
    assert alone.at(4) == pytest.approx(60.0)  # without it: depth 2 in proportion


def test_the_line_in_depth_recovers_a_known_line_and_its_guards() -> None:
    truth = {d: 5.0 + 10.0 * d for d in (1, 4, 7)}  # 5 s of embedding and head, 10 per block
    line = depth_line(truth)
    assert [line(d) for d in (2, 3, 12)] == pytest.approx([25.0, 35.0, 125.0])
    assert depth_line({3: 30.0})(5) == pytest.approx(50.0)  # one depth: in proportion
    assert depth_line({1: 30.0, 3: 10.0})(2) == 30.0  # a falling line: the nearest depth
    with pytest.raises(ValueError, match="at least one measured depth"):
        depth_line({})


def test_one_machine_rule_newest_first_then_its_device_by_jobs_never_another_device() -> None:
    zen3, zen4, zen5, h200 = "cpu (zen3)", "cpu (zen4)", "cpu (zen5)", "cuda (H200)"
    ended = [(zen3, "01"), (zen3, "02"), (zen4, "03"), (h200, "04"), (zen5, "05"), (zen3, "00")]
    assert machine_order(ended) == [zen5, zen3, zen4]
    assert machine_order([(None, "01"), (h200, None)]) == [None]  # unrecorded: its own machine
    assert machine_order([]) == []
    # the newest machine measured depth 6 only: depth 6 is its own, depth 4 comes from the
    # next machine's line (measured elsewhere beats one point scaled), and where no machine
    # can draw a line, the newest's one depth in proportion
    newest, next_one = {6: 60.0}, {2: 25.0, 4: 45.0}
    assert estimate([newest, next_one], 6) == (0, 60.0)
    assert estimate([newest, next_one], 3) == (1, pytest.approx(35.0))
    assert estimate([newest, {1: 99.0}], 3) == (0, pytest.approx(30.0))
    assert estimate([{}, {}], 3) is None
