"""``analysis.spread``: each cell's seeds, their sd, and which cells are wide, checked on
known numbers and, for how often a cell is called wide, by simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.settings import Settings
from analysis.spread import MIN_CELLS, seed_spread, wide_cells


def scores(cells: dict[tuple[float, str, int], list[float]]) -> pd.DataFrame:
    """Per-job scores as ``job_scores`` gives them: seed s of a cell scores ``values[s]``."""
    rows = [
        {
            "lr": lr,
            "batch_size": 100,
            "model": model,
            "depth": depth,
            "seed": seed,
            "score": value,
        }  # fmt: skip
        for (lr, model, depth), values in cells.items()
        for seed, value in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_each_cell_its_seeds_sd_and_whether_wide():
    cells = {
        (0.003, "vit", 1): [0.80, 0.81, 0.80],
        (0.003, "vit", 2): [0.90, 0.91, 0.905],
        (0.003, "vitbnffn", 1): [0.81, 0.80, 0.815],
        (0.003, "vitbnffn", 2): [0.91, 0.92, 0.915],
        (0.005, "vit", 3): [0.766, 0.650, 0.827],  # the study's ViT at depth 3, lr 0.005
        (0.005, "vitbnffn", 3): [0.871, np.nan, 0.86],  # a failed seed: not scored
        (0.005, "vit", 4): [0.7],  # one seed: no sd, no row
    }
    spread = seed_spread(scores(cells), Settings()).set_index(["lr", "model", "depth"])
    assert len(spread) == 6
    row = spread.loc[(0.005, "vit", 3)]
    assert row["seeds"] == (0, 1, 2) and row["scores"] == (0.766, 0.650, 0.827)
    assert np.isclose(row["sd"], np.std([0.766, 0.650, 0.827], ddof=1))
    assert (row["low"], row["high"], row["n"]) == (0.650, 0.827, 3)
    assert spread.loc[(0.005, "vitbnffn", 3), "seeds"] == (0, 2)
    typical = spread["typical_sd"].iloc[0]
    assert np.isclose(typical, spread["sd"].median()) and 0.004 < typical < 0.01
    assert spread.index[spread["wide"]].tolist() == [(0.005, "vit", 3)]
    # A stricter factor calls nothing wide; too few cells, nothing either (no typical).
    assert not seed_spread(scores(cells), Settings(spread=20)).wide.any()
    few = dict(list(cells.items())[MIN_CELLS - 1 : MIN_CELLS + 1])
    thin = seed_spread(scores(few), Settings())
    assert len(thin) < MIN_CELLS and not thin["wide"].any() and thin["typical_sd"].isna().all()
    # Seeds that agree exactly (sd 0 everywhere but one cell off by 0.1 point): not wide.
    exact = {k: [0.9, 0.9, 0.9] for k in list(cells)[:4]} | {(0.003, "vit", 5): [0.9, 0.9, 0.901]}
    assert not seed_spread(scores(exact), Settings())["wide"].any()


def test_the_wide_cells_in_words():
    spread = seed_spread(
        scores(
            {
                (0.003, "vit", 1): [0.80, 0.81, 0.80],
                (0.003, "vitbnffn", 1): [0.81, 0.80, 0.815],
                (0.005, "vit", 1): [0.80, 0.81, 0.805],
                (0.005, "vitbnffn", 1): [0.82, 0.81, 0.815],
                (0.003, "vit", 2): [0.90, 0.91, 0.905],
                (0.003, "vitbnffn", 2): [0.91, 0.92, 0.915],
                (0.005, "vit", 3): [0.766, 0.650, 0.827],
                (0.005, "vit", 4): [0.653, 0.683, 0.745],
                (0.005, "vitbnffn", 4): [0.851, 0.781, 0.861],
            }
        ),
        Settings(),
    )
    assert wide_cells(spread, ["lr", "batch_size"]) == [
        "lr=0.005, batch_size=100: vit depths 3, 4; vitbnffn depth 4"
    ]
    assert wide_cells(spread.iloc[:0], ["lr", "batch_size"]) == []


@pytest.mark.slow
def test_how_often_a_cell_is_called_wide_by_simulation():
    """400 simulated sweeps of 26 cells, 3 seeds each, normal noise of 1 point: under
    0.6 % of cells are called wide. A cell whose runs fall 10-30 points with chance 0.3
    is called wide nearly whenever one of its seeds fell (1 - 0.7^3 = 66 % of sweeps)."""
    rng = np.random.default_rng(0)
    sweeps, cells, seeds = 400, 26, 3
    noise = rng.normal(0.9, 0.01, (sweeps, cells, seeds))
    fell = rng.random((sweeps, seeds)) < 0.3
    noise[:, 0, :] -= fell * rng.uniform(0.10, 0.30, (sweeps, seeds))  # cell 0: a slow mode
    called = np.zeros((sweeps, cells), dtype=bool)
    for s in range(sweeps):
        frame = scores({(0.003, "vit", c): list(noise[s, c]) for c in range(cells)})
        called[s] = seed_spread(frame, Settings())["wide"].to_numpy()
    any_fell = fell.any(axis=1)
    assert called[:, 1:].mean() < 0.006  # 0.38 % here; about 0.2 % by the chi-square
    assert called[any_fell, 0].mean() > 0.95
    assert called[~any_fell, 0].mean() < 0.02
