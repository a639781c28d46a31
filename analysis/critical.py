"""The critical depth: the smallest swept depth from which the candidate beats the baseline.

Per condition (learning rate, batch size, ...) and depth, the difference candidate minus
baseline of the mean score over seeds, with a bootstrap interval when both models have
at least 2 seeds. A depth is *won* when the difference exceeds the margin and, with an
interval, its lower end is above 0. The critical depth is the smallest swept depth from
which every swept depth (it included) is won.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.bootstrap import diff_interval
from analysis.scores import condition_columns
from analysis.settings import Settings

WIN, LOSE, NO_DATA = "win", "lose", "no data"
WINS_FROM_SMALLEST = "wins from the smallest depth swept"
NEVER = "never within the swept range"
NOT_ENOUGH = "not enough data"


def _groups(frame: pd.DataFrame, columns: list[str]):
    if not columns:
        yield (), frame
        return
    yield from frame.groupby(columns, dropna=False, sort=True)


def _depth_row(a: np.ndarray, b: np.ndarray, settings: Settings, rng) -> dict:
    n_a, n_b = len(a), len(b)
    row = {"n_a": n_a, "n_b": n_b, "mean_a": np.nan, "mean_b": np.nan, "diff": np.nan}
    row.update(ci_low=np.nan, ci_high=np.nan, state=NO_DATA, note="")
    if n_a == 0 or n_b == 0:
        row["note"] = "no scored seed for " + ("both models" if n_a == n_b else "one model")
        return row
    row.update(mean_a=a.mean(), mean_b=b.mean(), diff=a.mean() - b.mean())
    low, high = diff_interval(a, b, level=settings.level, n_boot=settings.n_boot, rng=rng)
    row.update(ci_low=low, ci_high=high)
    if not row["diff"] > settings.margin:
        row.update(state=LOSE, note="difference not above the margin")
    elif not np.isnan(low) and not low > 0:
        row.update(state=LOSE, note="interval reaches 0")
    else:
        row.update(state=WIN, note="" if not np.isnan(low) else "1 seed: margin only")
    return row


def depth_differences(
    scores: pd.DataFrame, pair: tuple[str, str], settings: Settings
) -> pd.DataFrame:
    """Per condition and swept depth: seeds, means, difference, interval, and win/lose/no data.

    The swept depths of a condition are every depth at which either model has a job.
    """
    candidate, baseline = pair
    conditions = condition_columns(scores)
    scores = scores[scores["model"].isin(pair)]
    rng = np.random.default_rng(settings.seed)
    rows = []
    for key, group in _groups(scores, conditions):
        for depth in sorted(group["depth"].unique()):
            at = group[(group["depth"] == depth) & group["score"].notna()]
            a = at.loc[at["model"] == candidate, "score"].to_numpy(float)
            b = at.loc[at["model"] == baseline, "score"].to_numpy(float)
            row = dict(zip(conditions, key, strict=True))
            row.update(candidate=candidate, baseline=baseline, depth=int(depth))
            row["epoch"] = group["epoch"].max()
            row.update(_depth_row(a, b, settings, rng))
            rows.append(row)
    return pd.DataFrame(rows)


def verdict(depths: Sequence[int], states: Sequence[str]) -> tuple[int | None, str, str]:
    """(critical depth or None, verdict, detail) from the per-depth states, depths ascending."""
    if not depths or all(s == NO_DATA for s in states):
        return None, NOT_ENOUGH, "no depth has scored seeds for both models"
    last = len(states) - 1
    if states[last] == NO_DATA:
        return None, NOT_ENOUGH, f"no scored seeds for both models at depth {depths[last]}"
    if states[last] == LOSE:
        return None, NEVER, f"does not win at depth {depths[last]}, the largest swept"
    first = last
    while first > 0 and states[first - 1] == WIN:
        first -= 1
    if first == 0:
        return depths[0], WINS_FROM_SMALLEST, f"wins at every depth from {depths[0]}"
    if states[first - 1] == NO_DATA:
        detail = f"wins from depth {depths[first]} on; no data at depth {depths[first - 1]}"
        return None, NOT_ENOUGH, detail
    detail = f"does not win at depth {depths[first - 1]}"
    return depths[first], f"wins from depth {depths[first]}", detail


def _seed_range(group: pd.DataFrame) -> str:
    """Seeds per model and depth: ``3``, or ``1-3`` when they differ."""
    counts = pd.concat([group["n_a"], group["n_b"]]).astype(int)
    low, high = counts.min(), counts.max()
    return str(low) if low == high else f"{low}-{high}"


def critical_depths(diffs: pd.DataFrame) -> pd.DataFrame:
    """One row per condition: the critical depth (or None) and its verdict."""
    fixed = {"candidate", "baseline", "depth", "epoch", "n_a", "n_b", "mean_a", "mean_b"}
    fixed |= {"diff", "ci_low", "ci_high", "state", "note"}
    conditions = [c for c in diffs.columns if c not in fixed]
    rows = []
    for key, group in _groups(diffs, conditions):
        group = group.sort_values("depth")
        depths = group["depth"].astype(int).tolist()
        critical, text, detail = verdict(depths, group["state"].tolist())
        row = dict(zip(conditions, key, strict=True))
        row.update(
            candidate=group["candidate"].iloc[0],
            baseline=group["baseline"].iloc[0],
            depths=",".join(map(str, depths)),
            seeds=_seed_range(group),
            epoch=group["epoch"].max(),
            critical_depth=critical,
            verdict=text,
            detail=detail,
        )
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:
        table["critical_depth"] = table["critical_depth"].astype("Int64")
    return table
