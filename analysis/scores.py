"""One number per job to compare models by: its accuracy at an epoch, or the curve's mean.

A job's *condition* is everything it shares with the jobs it is compared with: learning
rate, batch size, and any other setting that differs between the loaded jobs (other
than model, depth and seed).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from analysis.frames import EXTRA_PREFIX
from analysis.settings import Settings

BASE_CONDITIONS = ("lr", "batch_size")
OPTIONAL_CONDITIONS = (
    "epochs",
    "dataset",
    "pipeline",
    "train_size",
    "test_size",
    "augment_train",
    "augment_test",
    "num_classes",
)
SCORE_COLUMNS = ("job", "model", "depth", "seed", "status", "epoch", "score", "note")


def condition_columns(frame: pd.DataFrame) -> list[str]:
    """The columns that, with model, depth and seed, tell jobs apart in ``frame``."""
    columns = [c for c in BASE_CONDITIONS if c in frame]
    columns += [c for c in OPTIONAL_CONDITIONS if c in frame and frame[c].nunique(dropna=False) > 1]
    for column in frame.columns:
        if not column.startswith(EXTRA_PREFIX):
            continue
        if column.startswith(f"{EXTRA_PREFIX}model."):
            # Model settings that differ between models are the model; within one, a condition.
            if frame.groupby("model")[column].nunique(dropna=False).max() > 1:
                columns.append(column)
        elif frame[column].nunique(dropna=False) > 1:
            columns.append(column)
    return columns


def condition_label(values: dict[str, Any]) -> str:
    """``lr=0.003, batch_size=100`` for a condition's values."""
    parts = []
    for key, value in values.items():
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        shown = "none" if missing else f"{value:g}" if isinstance(value, float) else value
        parts.append(f"{key.removeprefix(EXTRA_PREFIX)}={shown}")
    return ", ".join(parts)


def _score(curve: pd.Series, job: dict[str, Any], settings: Settings) -> tuple[int, float, str]:
    """(epoch, score, note) of one job from its metric-by-epoch ``curve``."""
    epoch = settings.epoch or int(job["epochs"])
    if job["status"] == "failed":
        return epoch, math.nan, "failed"
    if job["status"] == "diverged":
        if settings.diverged == "drop":
            return epoch, math.nan, "diverged (dropped)"
        chance = 1.0 / float(job.get("num_classes") or 10)
        after = range(len(curve) + 1, epoch + 1)
        curve = pd.concat([curve, pd.Series(chance, index=list(after), dtype="float64")])
    window = curve.reindex(range(1, epoch + 1))
    values = window.iloc[-1:] if settings.basis == "final" else window
    if values.empty or values.isna().any():
        return epoch, math.nan, f"no {settings.metric} at epoch {epoch}"
    note = "diverged (chance after)" if job["status"] == "diverged" else ""
    return epoch, float(values.mean()), note


def job_scores(tidy: pd.DataFrame, summary: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """One row per non-duplicate job: its condition, model, depth, seed and ``score``.

    ``score`` is NaN (with a ``note``) for jobs that cannot be scored: failed, diverged
    with ``diverged="drop"``, or without the metric at the chosen epoch.
    """
    conditions = condition_columns(summary)
    jobs = summary[~summary["duplicate"]] if "duplicate" in summary else summary
    curves = {
        job: group.set_index("epoch")[settings.metric].sort_index()
        for job, group in tidy.groupby("job", sort=False)
    }
    rows = []
    for job in jobs.to_dict("records"):
        curve = curves.get(job["job"], pd.Series(dtype="float64"))
        epoch, score, note = _score(curve, job, settings)
        rows.append(
            {
                **{c: job[c] for c in conditions},
                **{c: job[c] for c in SCORE_COLUMNS[:5]},
                "epoch": epoch,
                "score": score,
                "note": note,
            }
        )
    return pd.DataFrame(rows, columns=[*conditions, *SCORE_COLUMNS])
