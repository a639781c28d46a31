"""Learning-rate stability: how much accuracy a higher learning rate costs each model, and
whether it costs the baseline more than the candidate.

- ``lr_stability``: per model, condition and depth, the mean score at the lowest learning
  rate minus that at each higher one (positive: accuracy lost), with its t interval
  (paired by seed when both rates ran the same seeds).
- ``stability_gap``: per condition and depth, the points the baseline loses minus the
  points the candidate loses (positive: the higher rate hurts the baseline more). Each seed
  gives one loss per model (its score at the low rate minus at the high rate: one seed,
  one data stream), so a seed counts only where a model ran it at both rates; the gap's
  interval is the paired t over seeds both models have, else pooled or Welch t
  (``analysis.intervals``). Its state: the baseline or the candidate *loses more* when the
  interval excludes 0; *within the margin* when it lies inside (-margin, +margin)
  (``Settings.margin``: neither loses more by as much as the margin; two one-sided tests,
  each at half the interval's error); else *unresolved* (one seed: no interval).

Each interval is a per-depth 95 % (``Settings.level``) interval; no claim here spans depths.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.frames import condition_columns, groups, seed_interval
from analysis.intervals import diff_interval
from analysis.settings import Settings

BASELINE_MORE, CANDIDATE_MORE = "baseline loses more", "candidate loses more"
WITHIN_MARGIN, UNRESOLVED, NO_DATA = "within the margin", "unresolved", "no data"
GAP_ANSWERS = (BASELINE_MORE, CANDIDATE_MORE, WITHIN_MARGIN)  # more seeds would not change them
GAP_COLUMNS = ("candidate", "baseline", "depth", "lr_low", "lr_high", "n", "drop_candidate")
GAP_COLUMNS += ("drop_baseline", "gap", "ci_low", "ci_high", "method", "state")


def lr_stability(scores: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Per model, depth and other condition: mean score at the lowest learning rate minus
    that at each higher one (positive = accuracy lost), with its t interval (paired by
    seed when both rates ran the same seeds). Empty when fewer than two rates were swept.
    """
    others = [c for c in condition_columns(scores) if c != "lr"]
    keys = [*others, "model", "depth"]
    scored = scores[scores["score"].notna()]
    rows = []
    for key, group in groups(scored, keys):
        lrs = sorted(group["lr"].unique())
        low = group[group["lr"] == lrs[0]]
        for lr in lrs[1:]:
            high = group[group["lr"] == lr]
            interval = seed_interval(low, high, settings.level)
            rows.append(
                {
                    **dict(zip(keys, key, strict=True)),
                    "lr_low": lrs[0],
                    "lr_high": lr,
                    "n_low": len(low),
                    "n_high": len(high),
                    "acc_low": low["score"].mean(),
                    "acc_high": high["score"].mean(),
                    "drop": interval.diff,
                    "ci_low": interval.low,
                    "ci_high": interval.high,
                    "method": interval.method,
                }
            )
    return pd.DataFrame(rows)


def seed_losses(
    block: pd.DataFrame, model: str, low: float, high: float
) -> tuple[np.ndarray, np.ndarray]:
    """(losses, seeds): per seed ``model`` ran at both rates, its score at ``low`` minus at
    ``high``. ``block``: one row per seed (the index), one column per (model, lr)."""
    seeds = block.index.to_numpy()
    if (model, low) not in block or (model, high) not in block:
        return np.empty(0), seeds[:0]
    loss = (block[(model, low)] - block[(model, high)]).to_numpy(float)
    ran = ~np.isnan(loss)
    return loss[ran], seeds[ran]


def gap_state(n_candidate: int, n_baseline: int, low: float, high: float, margin: float) -> str:
    """The state of one gap (baseline's loss minus candidate's) from its seeds and interval:
    a side loses more where the interval excludes 0, else it is within the margin where the
    interval lies inside (-``margin``, +``margin``)."""
    if n_candidate == 0 or n_baseline == 0:
        return NO_DATA
    if np.isnan(low):
        return UNRESOLVED
    if low > 0:
        return BASELINE_MORE
    if high < 0:
        return CANDIDATE_MORE
    if -margin < low and high < margin:
        return WITHIN_MARGIN
    return UNRESOLVED


def stability_gap(scores: pd.DataFrame, pair: tuple[str, str], settings: Settings) -> pd.DataFrame:
    """Per condition (but lr), depth and higher rate: the baseline's loss minus the candidate's.

    Empty when fewer than two rates were swept.
    """
    candidate, baseline = pair
    others = [c for c in condition_columns(scores) if c != "lr"]
    scored = scores[scores["score"].notna() & scores["model"].isin(pair)]
    rows = []
    for key, group in groups(scored, [*others, "depth"]):
        # One row per seed, one column per (model, lr): that job's score.
        block = group.pivot(index="seed", columns=["model", "lr"], values="score")
        lrs = sorted({lr for _, lr in block.columns})
        for lr in lrs[1:]:
            cand, cand_seeds = seed_losses(block, candidate, lrs[0], lr)
            base, base_seeds = seed_losses(block, baseline, lrs[0], lr)
            interval = diff_interval(
                base, cand, level=settings.level, seeds_a=base_seeds, seeds_b=cand_seeds
            )
            rows.append(
                {
                    **dict(zip(others, key[:-1], strict=True)),
                    "candidate": candidate,
                    "baseline": baseline,
                    "depth": int(key[-1]),
                    "lr_low": lrs[0],
                    "lr_high": lr,
                    "n": min(len(cand), len(base)),
                    "drop_candidate": cand.mean() if len(cand) else np.nan,
                    "drop_baseline": base.mean() if len(base) else np.nan,
                    "gap": interval.diff,
                    "ci_low": interval.low,
                    "ci_high": interval.high,
                    "method": interval.method,
                    "state": gap_state(
                        len(cand), len(base), interval.low, interval.high, settings.margin
                    ),
                }
            )
    return pd.DataFrame(rows, columns=[*others, *GAP_COLUMNS])
