"""The cells and the critical depth on synthetic sweeps whose answer is known."""

from __future__ import annotations

import argparse
import math

import pandas as pd
import pytest

from analysis import Settings, analyze, records_from_dirs
from analysis.compare import (
    BEYOND,
    LOSE,
    NEVER,
    NO_DATA,
    NO_WIN,
    NOT_ENOUGH,
    UNDECIDED,
    UNRESOLVED,
    WIN,
    WINS_FROM_SMALLEST,
    cell_label,
    cell_state,
    state_legend,
    verdict,
    win_rule,
)
from analysis.settings import add_options, from_args
from tests.analysis_synth import write_grid, write_job


def answer(root, **settings):
    records, stats = records_from_dirs([root])
    result = analyze(records, stats, Settings(**settings))
    assert len(result.critical) == 1, result.critical
    row = result.critical.iloc[0]
    return row["critical_depth"], row["verdict"], result


def bounds(result) -> tuple:
    row = result.critical.iloc[0]
    high = row["critical_depth_high"]
    return int(row["critical_depth_low"]), None if pd.isna(high) else int(high)


def test_clean_critical_depth(tmp_path):
    write_grid(tmp_path, {1: -0.02, 2: 0.0, 3: 0.05, 4: 0.06, 5: 0.08})
    depth, text, result = answer(tmp_path)
    assert (depth, text) == ("3", "wins from depth 3") and bounds(result) == (3, 3)
    diffs = result.diffs.set_index("depth")
    assert diffs.loc[3, "diff"] == pytest.approx(0.05)
    assert (diffs["n_a"] == 3).all() and (diffs["method"] == "paired t").all()
    assert diffs.loc[3, "ci_low"] > 0 > diffs.loc[1, "ci_high"]
    assert diffs["state"].tolist() == [LOSE, LOSE, WIN, WIN, WIN]
    assert result.critical.iloc[0]["open_depths"] == ""


def test_censored_below_and_above(tmp_path):
    write_grid(tmp_path / "below", {4: 0.05, 5: 0.05, 6: 0.07, 7: 0.06})
    depth, text, result = answer(tmp_path / "below")
    assert (depth, text) == ("<= 4", WINS_FROM_SMALLEST) and bounds(result) == (1, 4)
    write_grid(tmp_path / "above", {4: -0.05, 5: 0.05, 6: 0.05, 7: -0.01})
    depth, text, result = answer(tmp_path / "above")
    assert (depth, text) == ("> 7", NEVER) and bounds(result) == (8, None)
    # Swept from depth 1, winning everywhere is no censoring: nothing is smaller than 1.
    write_grid(tmp_path / "from1", {1: 0.05, 2: 0.05})
    assert answer(tmp_path / "from1")[:2] == ("1", WINS_FROM_SMALLEST)


def test_noisy_seeds_leave_a_cell_unresolved(tmp_path):
    write_grid(tmp_path, {1: -0.02, 2: 0.0, 4: 0.05})
    # Depth 3: mean difference +3 points, above the margin, but one seed far below.
    for seed, acc in enumerate([0.95, 0.60, 0.94]):
        write_job(tmp_path / "d3", "vitbnffn", 3, seed, [0.5, 0.6, acc])
        write_job(tmp_path / "d3", "vit", 3, seed, [0.5, 0.6, 0.80])
    depth, text, result = answer(tmp_path)
    row = result.diffs.set_index("depth").loc[3]
    assert row["diff"] > 0.01 and row["ci_low"] < 0 < 0.01 < row["ci_high"]
    assert row["state"] == UNRESOLVED
    assert (depth, text) == ("3 or 4", UNDECIDED) and bounds(result) == (3, 4)
    assert result.critical.iloc[0]["open_depths"] == "3"
    assert "more seeds decide it" in result.critical.iloc[0]["detail"]


def test_one_seed_is_never_a_win(tmp_path):
    write_grid(tmp_path, {1: -0.05, 2: 0.05, 3: 0.08}, seeds=1)
    depth, text, result = answer(tmp_path)
    assert set(result.diffs["state"]) == {UNRESOLVED}
    assert (result.diffs["method"] == "none").all() and result.diffs["ci_low"].isna().all()
    assert result.diffs.set_index("depth").loc[3, "diff"] == pytest.approx(0.08)
    assert (depth, text) == ("1 to > 3", UNDECIDED) and bounds(result) == (1, None)


def test_non_monotone_difference(tmp_path):
    write_grid(tmp_path, {1: -0.03, 2: -0.01, 3: 0.04, 4: -0.02, 5: 0.05, 6: 0.06})
    assert answer(tmp_path)[:2] == ("5", "wins from depth 5")


def test_unresolved_below_a_lost_depth_does_not_matter(tmp_path):
    write_grid(tmp_path, {2: -0.02, 3: 0.05, 4: 0.05})
    for seed, (bn, vit) in enumerate([(0.90, 0.80), (0.70, 0.80)]):
        write_job(tmp_path / "d1", "vitbnffn", 1, seed, [0.5, 0.6, bn])
        write_job(tmp_path / "d1", "vit", 1, seed, [0.5, 0.6, vit])
    depth, text, result = answer(tmp_path)
    assert result.diffs.set_index("depth").loc[1, "state"] == UNRESOLVED
    assert (depth, text) == ("3", "wins from depth 3")
    assert result.critical.iloc[0]["open_depths"] == ""


def test_margin_is_a_strict_threshold(tmp_path):
    write_grid(tmp_path, {1: 0.0, 2: 0.02, 3: 0.03}, noise=0.0)
    assert answer(tmp_path)[0] == "2"
    assert answer(tmp_path, margin=0.025)[0] == "3"
    assert answer(tmp_path, margin=0.05)[:2] == ("> 3", NEVER)


def test_paired_and_unpaired_seeds(tmp_path):
    # The same seeds: paired; other seeds, as many: pooled; unequal counts: Welch.
    for seed in range(3):
        write_job(tmp_path, "vitbnffn", 1, seed, [0.85 + 0.01 * seed])
        write_job(tmp_path, "vit", 1, seed, [0.80 + 0.01 * seed])
        write_job(tmp_path, "vitbnffn", 2, seed, [0.85 + 0.01 * seed])
        write_job(tmp_path, "vit", 2, seed + 3, [0.80 + 0.01 * seed])
        write_job(tmp_path, "vitbnffn", 3, seed, [0.85 + 0.01 * seed])
    for seed in range(2):
        write_job(tmp_path, "vit", 3, seed, [0.80 + 0.01 * seed])
    _, _, result = answer(tmp_path)
    cells = result.diffs.set_index("depth")
    assert cells["method"].to_dict() == {1: "paired t", 2: "pooled t", 3: "Welch t"}
    # Paired: every difference is +5 points, the interval is the point itself.
    assert cells.loc[1, "ci_low"] == pytest.approx(0.05) == cells.loc[1, "ci_high"]
    assert cells.loc[2, "ci_low"] < 0.05 < cells.loc[2, "ci_high"]
    assert cells.loc[1, "state"] == WIN


def test_diverged_and_missing_jobs(tmp_path):
    write_grid(tmp_path, {1: -0.02, 2: 0.0, 3: 0.04})
    for seed in range(3):
        write_job(tmp_path / "d4", "vitbnffn", 4, seed, [0.5, 0.7, 0.85 + seed * 0.001])
    write_job(tmp_path / "d4", "vit", 4, 0, [0.5, 0.6, 0.80])
    write_job(tmp_path / "d4", "vit", 4, 1, [0.5, 0.6, 0.81])
    # Seed 2 of the baseline diverged during epoch 2; a candidate job at depth 2 never ended.
    write_job(tmp_path / "d4", "vit", 4, 2, [0.5], epochs=3, status="diverged")
    write_job(tmp_path / "cut", "vitbnffn", 2, 3, [0.5], result=False)
    depth, text, result = answer(tmp_path)
    counts = result.counts()
    assert (counts["completed"], counts["diverged"], counts["incomplete"]) == (23, 1, 1)
    at4 = result.diffs.set_index("depth").loc[4]
    assert at4["n_b"] == 3  # the diverged seed counts, at chance accuracy
    assert at4["mean_b"] == pytest.approx((0.80 + 0.81 + 0.10) / 3)
    # A seed at chance is far off the others: the paired interval is wide, depth 4 open.
    assert (at4["method"], at4["state"]) == ("paired t", UNRESOLVED)
    assert (depth, text) == ("3 or > 4", UNDECIDED)  # never, if depth 4 turns out lost
    _, _, dropped = answer(tmp_path, diverged="drop")
    at4 = dropped.diffs.set_index("depth").loc[4]
    assert at4["n_b"] == 2 and at4["mean_b"] == pytest.approx(0.805)
    assert at4["method"] == "Welch t"  # 3 seeds against 2


def test_missing_largest_depth_is_not_enough_data(tmp_path):
    write_grid(tmp_path, {1: -0.02, 2: 0.05})
    write_job(tmp_path / "d3", "vit", 3, 0, [0.5, 0.6, 0.8])
    write_job(tmp_path / "d3", "vitbnffn", 3, 0, [0.5], epochs=3, status="failed")
    depth, text, result = answer(tmp_path)
    assert (depth, text) == ("2 or > 3", NOT_ENOUGH)
    assert result.diffs.set_index("depth").loc[3, "state"] == NO_DATA


@pytest.mark.parametrize(
    ("n", "diff", "low", "high", "state"),
    [
        (0, 0.05, math.nan, math.nan, NO_DATA),
        (1, 0.05, math.nan, math.nan, UNRESOLVED),
        (3, 0.05, 0.02, 0.08, WIN),
        (3, 0.02, 0.001, 0.039, WIN),
        (3, 0.02, -0.001, 0.041, UNRESOLVED),  # the interval reaches 0
        (3, 0.008, 0.001, 0.015, UNRESOLVED),  # above 0, but not above the margin
        (3, 0.0, -0.009, 0.009, LOSE),
        (3, -0.01, -0.03, 0.009, LOSE),
    ],
)
def test_cell_states_are_disjoint_and_complete(n, diff, low, high, state):
    assert cell_state(n, 3, diff, low, high, margin=0.01)[0] == state


@pytest.mark.parametrize(
    ("state", "low", "high", "label"),
    [
        (WIN, 0.006, 0.034, WIN),  # mean above the margin, interval above 0: a win
        (WIN, 0.016, 0.070, BEYOND),  # the interval clears the margin too
        (LOSE, -0.003, 0.009, NO_WIN),  # ahead by +0.3, short of the rule: not a lose
        (LOSE, -0.014, 0.005, NO_WIN),  # behind on average, but the interval reaches 0
        (LOSE, -0.03, -0.001, LOSE),  # clearly behind: the interval below 0
        (UNRESOLVED, -0.007, 0.014, UNRESOLVED),
    ],
)
def test_pages_say_no_win_where_the_candidate_is_not_clearly_behind(state, low, high, label):
    assert cell_label(state, low, high, margin=0.01) == label


def test_the_rule_is_stated_exactly():
    assert win_rule(0.01, 0.95) == "wins: mean above the margin (1 point) and 95 % interval above 0"
    assert state_legend(0.01, 0.95).startswith(win_rule(0.01, 0.95) + "; ")


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([LOSE, WIN, WIN], ("2", "wins from depth 2", ())),
        ([WIN, WIN, WIN], ("1", WINS_FROM_SMALLEST, ())),
        ([WIN, LOSE, WIN, LOSE], ("> 4", NEVER, ())),
        ([NO_DATA, NO_DATA, NO_DATA], ("unknown", NOT_ENOUGH, ())),
        ([LOSE, NO_DATA, WIN], ("2 or 3", NOT_ENOUGH, (2,))),
        ([LOSE, WIN, NO_DATA], ("2 or > 3", NOT_ENOUGH, (3,))),
        ([NO_DATA, LOSE, WIN], ("3", "wins from depth 3", ())),
        ([UNRESOLVED, WIN, UNRESOLVED, WIN], ("1 to 4", UNDECIDED, (1, 3))),
        ([LOSE, UNRESOLVED, LOSE, UNRESOLVED], ("4 or > 4", UNDECIDED, (4,))),
        ([UNRESOLVED, LOSE, WIN, WIN], ("3", "wins from depth 3", ())),
    ],
)
def test_verdict_rules(states, expected):
    found = verdict([1, 2, 3, 4][: len(states)], states)
    assert (found.text, found.verdict, found.open_depths) == expected


def test_verdict_bounds_with_gaps_between_swept_depths():
    found = verdict([2, 4, 6], [LOSE, WIN, WIN])
    assert (found.low, found.high, found.text) == (3, 4, "3-4")
    assert found.verdict == "wins from depth 4"
    found = verdict([4, 5, 6, 7], [UNRESOLVED, WIN, UNRESOLVED, WIN])
    assert (found.low, found.high, found.text) == (1, 7, "<= 4 to 7")


def test_one_answer_per_learning_rate_and_batch_size(tmp_path):
    write_grid(tmp_path, {1: 0.0, 2: 0.05, 3: 0.05}, lr=0.003)
    write_grid(tmp_path, {1: 0.05, 2: 0.05, 3: 0.05}, lr=0.005)
    records, stats = records_from_dirs([tmp_path])
    result = analyze(records, stats, Settings())
    table = result.critical.set_index("lr")
    assert table.loc[0.003, "critical_depth"] == "2"
    assert table.loc[0.005, "verdict"] == WINS_FROM_SMALLEST
    assert list(result.conditions) == ["lr", "batch_size"]


def test_auc_basis_rewards_faster_convergence(tmp_path):
    for seed in range(3):
        for depth in (1, 2):
            fast = [0.5, 0.8, 0.85 + 0.001 * seed] if depth == 2 else [0.3, 0.6, 0.85]
            write_job(tmp_path, "vitbnffn", depth, seed, fast)
            write_job(tmp_path, "vit", depth, seed, [0.3, 0.6, 0.85 + 0.001 * seed])
    assert answer(tmp_path)[:2] == ("> 2", NEVER)
    assert answer(tmp_path, basis="auc")[:2] == ("2", "wins from depth 2")
    assert answer(tmp_path, basis="auc", epoch=1)[0] == "2"
    assert answer(tmp_path, epoch=2)[0] == "2"


def test_metric_and_model_pair_are_choices(tmp_path):
    for seed in range(3):
        for depth in (1, 2):
            write_job(tmp_path, "vit", depth, seed, [0.8], clean=[0.80 + 0.001 * seed])
            write_job(tmp_path, "vitbn", depth, seed, [0.8], clean=[0.9 + 0.002 * seed])
    assert answer(tmp_path, models=("vitbn", "vit"))[:2] == ("> 2", NEVER)
    clean = answer(tmp_path, models=("vitbn", "vit"), metric="test_acc_clean")
    assert clean[:2] == ("1", WINS_FROM_SMALLEST)
    # Without vitbnffn present, the default pair falls back to vitbn vs vit.
    assert clean[2].pair == ("vitbn", "vit")


def test_every_comparison_option_reaches_settings():
    """``add_options``' defaults are ``Settings``' own, and each option sets its field."""
    parser = argparse.ArgumentParser()
    add_options(parser)
    assert from_args(parser.parse_args([])) == Settings()
    given = "--models vitbn vit --metric test_acc_clean --basis auc --epoch 3 --margin 0.02"
    given += " --level 0.9 --diverged drop --spread 4"
    assert from_args(parser.parse_args(given.split())) == Settings(
        ("vitbn", "vit"), "test_acc_clean", "auc", 3, 0.02, 0.9, "drop", 4.0
    )


def test_learning_rate_stability(tmp_path):
    for seed in range(3):
        for lr, vit, bn in ((0.003, 0.80, 0.82), (0.005, 0.70, 0.81)):
            write_job(tmp_path, "vit", 2, seed, [vit + 0.001 * seed * (lr * 1000 - 2)], lr=lr)
            write_job(tmp_path, "vitbnffn", 2, seed, [bn + 0.001 * seed], lr=lr)
    records, stats = records_from_dirs([tmp_path])
    table = analyze(records, stats, Settings()).stability.set_index("model")
    assert table.loc["vit", "drop"] == pytest.approx(0.10, abs=0.002)
    assert table.loc["vitbnffn", "drop"] == pytest.approx(0.01)
    assert table.loc["vit", "ci_low"] > 0.05 and table.loc["vit", "method"] == "paired t"
    assert set(table["lr_low"]) == {0.003} and set(table["lr_high"]) == {0.005}


def test_a_sweeps_numbers_do_not_depend_on_what_else_was_loaded(tmp_path):
    write_grid(tmp_path / "a", {1: -0.02, 2: 0.03}, lr=0.003)
    write_grid(tmp_path / "b", {1: 0.05, 2: 0.05}, lr=0.005, noise=0.004)
    alone = analyze(*records_from_dirs([tmp_path / "a"]), Settings()).diffs
    both = analyze(*records_from_dirs([tmp_path / "b", tmp_path / "a"]), Settings()).diffs
    both = both[both["lr"] == 0.003].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, both)
