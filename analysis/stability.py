"""Learning-rate stability: per model and depth, the accuracy lost at a higher learning rate."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.bootstrap import diff_interval
from analysis.scores import condition_columns
from analysis.settings import Settings


def lr_stability(scores: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Per model, depth and other condition: mean score at the lowest learning rate minus
    that at each higher one (positive = accuracy lost), with a bootstrap interval.

    Empty when fewer than two learning rates were swept.
    """
    others = [c for c in condition_columns(scores) if c != "lr"]
    keys = [*others, "model", "depth"]
    scored = scores[scores["score"].notna()]
    rng = np.random.default_rng(settings.seed)
    rows = []
    for key, group in scored.groupby(keys, dropna=False, sort=True):
        lrs = sorted(group["lr"].unique())
        low = group.loc[group["lr"] == lrs[0], "score"].to_numpy(float)
        for lr in lrs[1:]:
            high = group.loc[group["lr"] == lr, "score"].to_numpy(float)
            ci_low, ci_high = diff_interval(
                low, high, level=settings.level, n_boot=settings.n_boot, rng=rng
            )
            row = dict(zip(keys, key, strict=True))
            row.update(
                lr_low=lrs[0],
                lr_high=lr,
                n_low=len(low),
                n_high=len(high),
                acc_low=low.mean(),
                acc_high=high.mean(),
                drop=low.mean() - high.mean(),
                ci_low=ci_low,
                ci_high=ci_high,
            )
            rows.append(row)
    return pd.DataFrame(rows)
