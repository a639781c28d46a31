"""Seed spread: how far each cell's seeds scatter, and which cells scatter far wider than
the sweep's typical cell.

A t interval on a few seeds assumes their noise is roughly normal. Some cells break that:
at a high learning rate a deep ViT lands in a fast or a slow mode depending on the seed
(this study: ViT at depth 3, lr 0.005 gave 76.6, 65.0 and 82.7 %), and a few seeds can all
miss the rare mode. Such a cell needs many seeds before its verdict means much
(``make resolve MIN_SEEDS=5``; ``make simulate SIM_ARGS="--slow-mode ..."`` measures why).

- ``seed_spread``: per condition, model and depth with >= 2 scored seeds: the seeds' scores
  in seed order, their mean, standard deviation and range, and ``wide``: a standard
  deviation above ``Settings.spread`` times the *typical* one, the median over the cells.
  The median is robust to the wide cells themselves while they are fewer than half. With
  normal noise and 3 seeds the median sd is about 0.83 times the true one, so a cell is
  called wide when its sd exceeds about 2.5 true ones: chance e^-6.2 = 0.2 % (chi-square,
  2 degrees of freedom); ``tests/test_analysis_spread.py`` measures 0.4 % by simulation,
  and a cell with a 30 % slow mode called wide in 99.6 % of the sweeps where a seed hit it.
  Nothing is called wide with fewer than ``MIN_CELLS`` cells (no typical to compare with).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.frames import condition_columns, condition_label, groups
from analysis.settings import Settings

MIN_CELLS = 4  # cells with >= 2 seeds needed for a typical sd
WIDE_MIN_SEEDS = 5  # resolve's --min-seeds where seeds are wide (docs/statistics.md: slow mode)
SD_FLOOR = 0.001  # 0.1 point: seeds that agree to the last digit make no cell wide
SPREAD_COLUMNS = ("model", "depth", "n", "seeds", "scores", "mean", "sd", "low", "high")
SPREAD_COLUMNS += ("typical_sd", "wide")


def seed_spread(scores: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """One row per condition, model and depth with >= 2 scored seeds (``SPREAD_COLUMNS``;
    ``seeds`` and ``scores`` are tuples in seed order); empty when there is none."""
    conditions = condition_columns(scores)
    keys = [*conditions, "model", "depth"]
    scored = scores[scores["score"].notna()]
    rows = []
    for key, group in groups(scored, keys):
        if len(group) < 2:
            continue
        group = group.sort_values("seed")
        values = group["score"].to_numpy(float)
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "n": len(values),
                "seeds": tuple(int(s) for s in group["seed"]),
                "scores": tuple(float(v) for v in values),
                "mean": float(values.mean()),
                "sd": float(values.std(ddof=1)),
                "low": float(values.min()),
                "high": float(values.max()),
            }
        )
    frame = pd.DataFrame(rows, columns=[*conditions, *SPREAD_COLUMNS[:-2]])
    if len(frame) < MIN_CELLS:
        return frame.assign(typical_sd=np.nan, wide=False)
    typical = float(frame["sd"].median())
    return frame.assign(
        typical_sd=typical, wide=frame["sd"] > settings.spread * max(typical, SD_FLOOR)
    )


def wide_rule(spread: pd.DataFrame, factor: float) -> str:
    """``sd above 3 times the typical 0.9 points``: when a cell is wide (needs a typical)."""
    return f"sd above {factor:g} times the typical {spread['typical_sd'].iloc[0] * 100:.1f} points"


def wide_cells(spread: pd.DataFrame, conditions: list[str]) -> list[str]:
    """Where seeds are wide, one line per condition: ``lr=0.005: vit depths 3, 4;
    vitbnffn depth 4`` (no line for a condition without a wide cell)."""
    if spread.empty:
        return []
    lines = []
    for key, group in groups(spread[spread["wide"]], conditions):
        models = []
        for model, rows in group.groupby("model", sort=True):
            depths = sorted(int(d) for d in rows["depth"])
            noun = "depth" if len(depths) == 1 else "depths"
            models.append(f"{model} {noun} {', '.join(map(str, depths))}")
        where = condition_label(dict(zip(conditions, key, strict=True)))
        lines.append(f"{where}: " + "; ".join(models) if where else "; ".join(models))
    return lines
