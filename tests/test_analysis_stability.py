"""Learning-rate stability and its gap (does a higher lr hurt the baseline more?): known
truths through the real code, 95 % coverage by simulation, and seeds that do not match."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import Settings, analyze, records_from_dirs
from analysis.render import gap_table
from analysis.stability import (
    BASELINE_MORE,
    CANDIDATE_MORE,
    NO_DATA,
    UNRESOLVED,
    WITHIN_MARGIN,
    stability_gap,
)
from studies.seeding import SEED_SD
from tests.analysis_synth import write_job

PAIR = ("vitbnffn", "vit")


def scores(rows: list[tuple[str, int, int, float, float]]) -> pd.DataFrame:
    """A scores frame (what ``job_scores`` gives) from (model, depth, seed, lr, score)."""
    frame = pd.DataFrame(rows, columns=["model", "depth", "seed", "lr", "score"])
    return frame.assign(batch_size=100)


def simulated(truth: float, n: int, experiments: int, seed: int) -> pd.DataFrame:
    """``experiments`` independent sweeps (one per depth), ``n`` seeds each: each seed's data
    stream shifts all four of its jobs alike, plus a seed x lr effect both models share, plus
    independent noise. The baseline loses 0.10 + ``truth`` at the high lr, the candidate 0.10."""
    rng = np.random.default_rng(seed)
    shape = (experiments, n)
    stream = rng.normal(0, SEED_SD, shape)
    rows = []
    for lr, loss in ((0.003, 0.0), (0.005, 1.0)):
        shared = rng.normal(0, SEED_SD * 0.7, shape)
        for model, extra in (("vit", truth), ("vitbnffn", 0.0)):
            acc = 0.9 + stream + shared - loss * (0.10 + extra)
            acc = acc + rng.normal(0, SEED_SD * 0.8, shape)
            rows += [
                (model, depth + 1, s, lr, acc[depth, s])
                for depth in range(experiments)
                for s in range(n)
            ]
    return scores(rows)


@pytest.mark.slow
@pytest.mark.parametrize("n", [2, 3, 5])
def test_the_gaps_interval_covers_the_truth_95_percent_of_the_time(n: int) -> None:
    truth, experiments = 0.04, 1500
    gap = stability_gap(simulated(truth, n, experiments, seed=n), PAIR, Settings())
    assert len(gap) == experiments and set(gap["method"]) == {"paired t"}
    assert (gap["n"] == n).all()
    covered = np.mean((gap["ci_low"] < truth) & (truth < gap["ci_high"]))
    assert 0.93 <= covered <= 0.97, covered
    assert gap["gap"].mean() == pytest.approx(truth, abs=0.003)


@pytest.mark.slow
def test_without_a_gap_either_verdict_comes_out_about_2_5_percent_of_the_time() -> None:
    gap = stability_gap(simulated(0.0, 3, 3000, seed=11), PAIR, Settings())
    shares = gap["state"].value_counts(normalize=True)
    assert 0.015 <= shares.get(BASELINE_MORE, 0) <= 0.035
    assert 0.015 <= shares.get(CANDIDATE_MORE, 0) <= 0.035
    assert shares[UNRESOLVED] + shares.get(WITHIN_MARGIN, 0) > 0.93


@pytest.mark.slow
@pytest.mark.parametrize("truth", [0.01, -0.01])
def test_within_the_margin_is_said_of_a_gap_at_the_margin_at_most_2_5_percent_of_the_time(
    truth: float,
) -> None:
    # Two one-sided tests at 2.5 % each: at the margin itself, the 95 % interval lies inside
    # (-1, +1) point in at most 2.5 % of experiments (fewer, as the other side also bounds).
    gap = stability_gap(simulated(truth, 5, 3000, seed=7), PAIR, Settings())
    assert gap["state"].eq(WITHIN_MARGIN).mean() <= 0.03


@pytest.mark.slow
def test_a_precise_null_gap_is_within_the_margin() -> None:
    # sd of a seed's gap 0.4 point: the 95 % interval on 5 seeds spans about +-0.5.
    rows = simulated(0.0, 5, 1000, seed=3)
    rows["score"] = 0.9 + (rows["score"] - 0.9) / 4
    gap = stability_gap(rows, PAIR, Settings())
    assert gap["state"].eq(WITHIN_MARGIN).mean() > 0.8
    assert gap["state"].isin([BASELINE_MORE, CANDIDATE_MORE]).mean() <= 0.07


@pytest.mark.parametrize(
    ("more", "less", "same", "answer"),
    [
        ([], [], [], "**not settled at any depth**: every interval reaches 0 and past the"),
        (["4"], [], [], "**yes at depth 4** (interval above 0)"),
        (["4"], [], ["1", "2"], "**yes at depth 4** (interval above 0); **neither, within ±1 "
         "point, at depth 1, 2** (interval within the margin)"),
        ([], ["3"], [], "**vitbnffn loses more at depth 3** (interval below 0)"),
    ],
)  # fmt: skip
def test_the_gap_verdict_names_each_answer_by_depth(more, less, same, answer) -> None:
    from studies.findings import _gap_verdict

    assert _gap_verdict(more, less, same, "vitbnffn", "1 point").startswith(answer)


def test_a_seed_counts_only_where_a_model_ran_it_at_both_rates() -> None:
    rows = [
        ("vit", 2, 0, 0.003, 0.90), ("vit", 2, 0, 0.005, 0.70),
        ("vit", 2, 1, 0.003, 0.92), ("vit", 2, 1, 0.005, 0.74),
        ("vit", 2, 2, 0.003, 0.99),  # seed 2 at the low lr only: no loss of its own
        ("vitbnffn", 2, 0, 0.003, 0.91), ("vitbnffn", 2, 0, 0.005, 0.89),
        ("vitbnffn", 2, 1, 0.003, 0.93), ("vitbnffn", 2, 1, 0.005, 0.92),
        ("vit", 3, 0, 0.003, 0.90), ("vit", 3, 1, 0.005, 0.70),  # no seed at both rates
        ("vitbnffn", 3, 0, 0.003, 0.91), ("vitbnffn", 3, 0, 0.005, 0.89),
    ]  # fmt: skip
    gap = stability_gap(scores(rows), PAIR, Settings()).set_index("depth")
    # depth 2: vit loses 0.20 and 0.18, vitbnffn 0.02 and 0.01: gaps 0.18 and 0.17.
    assert gap.loc[2, "drop_baseline"] == pytest.approx(0.19)
    assert gap.loc[2, "drop_candidate"] == pytest.approx(0.015)
    assert gap.loc[2, "gap"] == pytest.approx(0.175)
    assert (gap.loc[2, "n"], gap.loc[2, "method"]) == (2, "paired t")
    assert gap.loc[2, "state"] == BASELINE_MORE  # paired: 0.18, 0.17 -> [+0.11, +0.24]
    assert gap.loc[3, "state"] == NO_DATA and np.isnan(gap.loc[3, "gap"])
    one = stability_gap(scores(rows[:2] + rows[5:7]), PAIR, Settings())
    assert (one["state"].iloc[0], one["method"].iloc[0]) == (UNRESOLVED, "none")
    assert one["gap"].iloc[0] == pytest.approx(0.18)
    assert stability_gap(scores(rows[:1] + rows[5:6]), PAIR, Settings()).empty  # one lr


def test_from_job_results_to_the_rendered_table(tmp_path) -> None:
    for seed in range(3):
        for lr, vit, bn in ((0.003, 0.80, 0.82), (0.005, 0.70, 0.81)):
            write_job(tmp_path, "vit", 2, seed, [vit + 0.001 * seed * (lr * 1000 - 2)], lr=lr)
            write_job(tmp_path, "vitbnffn", 2, seed, [bn + 0.001 * seed], lr=lr)
    a = analyze(*records_from_dirs([tmp_path]), Settings())
    row = a.stability_gap.iloc[0]
    # vit loses 0.10 - 0.002 * seed (0.098 on average), vitbnffn 0.01: a gap of 0.088.
    assert row["gap"] == pytest.approx(0.088) and row["state"] == BASELINE_MORE
    table = gap_table(a.stability_gap, a.conditions)
    assert table["state"].tolist() == ["vit loses more"]
    assert table["vit lost more (points)"].tolist() == ["+8.8"]


def test_a_condition_without_a_value_is_a_group_of_its_own() -> None:
    rows = [
        (model, 2, seed, lr, 0.9 + 0.01 * seed - (lr == 0.005) * loss)
        for model, loss in (("vit", 0.2), ("vitbnffn", 0.05))
        for seed in range(3)
        for lr in (0.003, 0.005)
    ]
    frame = pd.concat([scores(rows), scores(rows).assign(batch_size=np.nan)])
    gap = stability_gap(frame, PAIR, Settings())
    assert gap["batch_size"].isna().sum() == 1 and (gap["batch_size"] == 100).sum() == 1
    assert gap["gap"].tolist() == pytest.approx([0.15, 0.15])
