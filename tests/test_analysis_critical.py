"""The critical depth on synthetic sweeps whose answer is known."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import Settings, analyze, records_from_dirs
from analysis.critical import LOSE, NEVER, NO_DATA, NOT_ENOUGH, WIN, WINS_FROM_SMALLEST, verdict
from tests.analysis_synth import write_grid, write_job

FAST = {"n_boot": 2000}


def answer(root, **settings):
    records, stats = records_from_dirs([root])
    result = analyze(records, stats, Settings(**{**FAST, **settings}))
    assert len(result.critical) == 1, result.critical
    row = result.critical.iloc[0]
    depth = None if pd.isna(row["critical_depth"]) else int(row["critical_depth"])
    return depth, row["verdict"], result


def test_clean_critical_depth(tmp_path):
    write_grid(tmp_path, {1: -0.02, 2: 0.0, 3: 0.05, 4: 0.06, 5: 0.08})
    depth, text, result = answer(tmp_path)
    assert (depth, text) == (3, "wins from depth 3")
    diffs = result.diffs.set_index("depth")
    assert diffs.loc[3, "diff"] == pytest.approx(0.05)
    assert (diffs["n_a"] == 3).all() and diffs["ci_low"].notna().all()
    assert diffs.loc[3, "ci_low"] > 0 > diffs.loc[1, "ci_high"]


def test_noisy_seeds_the_interval_decides(tmp_path):
    write_grid(tmp_path, {1: -0.02, 2: 0.0, 4: 0.05})
    # Depth 3: mean difference +3 points, above the margin, but one seed far below.
    for seed, acc in enumerate([0.95, 0.60, 0.94]):
        write_job(tmp_path / "d3", "vitbnffn", 3, seed, [0.5, 0.6, acc])
        write_job(tmp_path / "d3", "vit", 3, seed, [0.5, 0.6, 0.80])
    depth, text, result = answer(tmp_path)
    row = result.diffs.set_index("depth").loc[3]
    assert row["diff"] > 0.01 and row["ci_low"] < 0 and row["state"] == LOSE
    assert depth == 4
    # With one seed (no interval) the margin alone decides, and depth 3 counts as won.
    one_seed = [
        r for r in records_from_dirs([tmp_path])[0] if r.result["config"]["trainer"]["seed"] == 0
    ]
    single = analyze(one_seed, records_from_dirs([tmp_path])[1], Settings(**FAST))
    assert int(single.critical.iloc[0]["critical_depth"]) == 3


def test_non_monotone_difference(tmp_path):
    write_grid(tmp_path, {1: -0.03, 2: -0.01, 3: 0.04, 4: -0.02, 5: 0.05, 6: 0.06})
    assert answer(tmp_path)[:2] == (5, "wins from depth 5")


def test_wins_everywhere(tmp_path):
    write_grid(tmp_path, {2: 0.05, 3: 0.05, 4: 0.07})
    assert answer(tmp_path)[:2] == (2, WINS_FROM_SMALLEST)


def test_never_wins(tmp_path):
    write_grid(tmp_path, {1: 0.05, 2: 0.05, 3: -0.01})
    assert answer(tmp_path)[:2] == (None, NEVER)


def test_margin_is_a_strict_threshold(tmp_path):
    write_grid(tmp_path, {1: 0.0, 2: 0.02, 3: 0.03}, noise=0.0)
    assert answer(tmp_path)[0] == 2
    assert answer(tmp_path, margin=0.025)[0] == 3
    assert answer(tmp_path, margin=0.05)[:2] == (None, NEVER)


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
    assert (depth, text) == (3, "wins from depth 3")
    counts = result.counts()
    assert (counts["completed"], counts["diverged"], counts["incomplete"]) == (23, 1, 1)
    at4 = result.diffs.set_index("depth").loc[4]
    assert at4["n_b"] == 3  # the diverged seed counts, at chance accuracy
    assert at4["mean_b"] == pytest.approx((0.80 + 0.81 + 0.10) / 3)
    _, _, dropped = answer(tmp_path, diverged="drop")
    at4 = dropped.diffs.set_index("depth").loc[4]
    assert at4["n_b"] == 2 and at4["mean_b"] == pytest.approx(0.805)
    assert int(dropped.critical.iloc[0]["critical_depth"]) == 3


def test_missing_largest_depth_is_not_enough_data(tmp_path):
    write_grid(tmp_path, {1: -0.02, 2: 0.05})
    write_job(tmp_path / "d3", "vit", 3, 0, [0.5, 0.6, 0.8])
    write_job(tmp_path / "d3", "vitbnffn", 3, 0, [0.5], epochs=3, status="failed")
    assert answer(tmp_path)[:2] == (None, NOT_ENOUGH)


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([LOSE, WIN, WIN], (2, "wins from depth 2")),
        ([WIN, WIN, WIN], (1, WINS_FROM_SMALLEST)),
        ([WIN, LOSE, WIN, LOSE], (None, NEVER)),
        ([NO_DATA, NO_DATA, NO_DATA], (None, NOT_ENOUGH)),
        ([LOSE, NO_DATA, WIN], (None, NOT_ENOUGH)),
        ([LOSE, WIN, NO_DATA], (None, NOT_ENOUGH)),
        ([NO_DATA, LOSE, WIN], (3, "wins from depth 3")),
    ],
)
def test_verdict_rules(states, expected):
    depth, text, _ = verdict([1, 2, 3, 4][: len(states)], states)
    assert (depth, text) == expected


def test_one_answer_per_learning_rate_and_batch_size(tmp_path):
    write_grid(tmp_path, {1: 0.0, 2: 0.05, 3: 0.05}, lr=0.003)
    write_grid(tmp_path, {1: 0.05, 2: 0.05, 3: 0.05}, lr=0.005)
    records, stats = records_from_dirs([tmp_path])
    result = analyze(records, stats, Settings(**FAST))
    table = result.critical.set_index("lr")
    assert table.loc[0.003, "critical_depth"] == 2
    assert table.loc[0.005, "verdict"] == WINS_FROM_SMALLEST
    assert list(result.conditions) == ["lr", "batch_size"]


def test_auc_basis_rewards_faster_convergence(tmp_path):
    for seed in range(2):
        for depth in (1, 2):
            fast = [0.5, 0.8, 0.85 + 0.001 * seed] if depth == 2 else [0.3, 0.6, 0.85]
            write_job(tmp_path, "vitbnffn", depth, seed, fast)
            write_job(tmp_path, "vit", depth, seed, [0.3, 0.6, 0.85 + 0.001 * seed])
    assert answer(tmp_path)[:2] == (None, NEVER)
    assert answer(tmp_path, basis="auc")[:2] == (2, "wins from depth 2")
    assert answer(tmp_path, basis="auc", epoch=1)[0] == 2
    assert answer(tmp_path, epoch=2)[0] == 2


def test_metric_and_model_pair_are_choices(tmp_path):
    for seed in range(2):
        for depth in (1, 2):
            write_job(tmp_path, "vit", depth, seed, [0.8], clean=[0.80 + 0.001 * seed])
            write_job(tmp_path, "vitbn", depth, seed, [0.8], clean=[0.9 + 0.001 * seed])
    assert answer(tmp_path, models=("vitbn", "vit"))[:2] == (None, NEVER)
    clean = answer(tmp_path, models=("vitbn", "vit"), metric="test_acc_clean")
    assert clean[:2] == (1, WINS_FROM_SMALLEST)
    # Without vitbnffn present, the default pair falls back to vitbn vs vit.
    assert clean[2].pair == ("vitbn", "vit")


def test_learning_rate_stability(tmp_path):
    for seed in range(2):
        for lr, vit, bn in ((0.003, 0.80, 0.82), (0.005, 0.70, 0.81)):
            write_job(tmp_path, "vit", 2, seed, [vit + 0.001 * seed], lr=lr)
            write_job(tmp_path, "vitbnffn", 2, seed, [bn + 0.001 * seed], lr=lr)
    records, stats = records_from_dirs([tmp_path])
    table = analyze(records, stats, Settings(**FAST)).stability.set_index("model")
    assert table.loc["vit", "drop"] == pytest.approx(0.10)
    assert table.loc["vitbnffn", "drop"] == pytest.approx(0.01)
    assert table.loc["vit", "ci_low"] > 0.05
    assert set(table["lr_low"]) == {0.003} and set(table["lr_high"]) == {0.005}
