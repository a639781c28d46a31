"""``JobRecord``s into pandas frames: tidy (one row per job and epoch), summary (one row per
job) and scores (one number per job to compare models by).

Config values appear under short names for the settings the study varies (``KEY_COLUMNS``)
and, for any other config value that differs between the loaded jobs, under ``cfg.<dotted
key>``. Jobs with the same config (bar keys that do not change the maths) are duplicates:
all but the latest are flagged ``duplicate`` and left out of the analysis.

A job's *condition* is everything it shares with the jobs it is compared with: learning
rate, batch size, and any other setting that differs between the loaded jobs (other than
model, depth and seed).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from analysis.intervals import Interval, diff_interval
from analysis.records import JobRecord
from analysis.settings import Settings
from vitbn_sweep.identity import flatten, job_identity
from vitbn_sweep.results import machine
from vitbn_sweep.store import METRIC_COLUMNS

KEY_COLUMNS: dict[str, str] = {
    "model": "model.name",
    "depth": "model.depth",
    "lr": "optim.lr",
    "batch_size": "trainer.batch_size",
    "seed": "trainer.seed",
    "epochs": "trainer.epochs",
    "dataset": "data.name",
    "pipeline": "data.pipeline",
    "train_size": "data.train_size",
    "test_size": "data.test_size",
    "augment_train": "data.augment.train",
    "augment_test": "data.augment.test",
    "num_classes": "data.num_classes",
}
JOB_COLUMNS = ("job", "source", "path", "status")
EXTRA_PREFIX = "cfg."
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


def flat_cells(config: Mapping[str, Any]) -> dict[str, Any]:
    """A nested config by dotted key (``identity.flatten``), lists as JSON strings: hashable,
    CSV-safe frame cells."""
    return {
        key: json.dumps(list(value)) if isinstance(value, list | tuple) else value
        for key, value in flatten(config).items()
    }


def job_config(result: Mapping[str, Any]) -> dict[str, Any]:
    """The job's flattened identity: its config without the keys that do not change its results."""
    return flat_cells(job_identity(result["config"]))


def _job_ids(records: Sequence[JobRecord]) -> list[str]:
    """Short job names: paths relative to the dir that holds them all, else source:index."""
    paths = [os.path.abspath(r.path) for r in records if r.path]
    base = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else ""
    names = [
        os.path.relpath(os.path.abspath(r.path), base) if r.path else f"{r.source}:{i}"
        for i, r in enumerate(records)
    ]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):  # one job dir read back twice (a tracker's reruns)
        seen[name] = seen.get(name, 0) + 1
        names[i] = name if seen[name] == 1 else f"{name}#{seen[name]}"
    return names


def _summary_row(record: JobRecord, job: str, config: dict[str, Any]) -> dict[str, Any]:
    result = record.result
    final, best = result.get("final") or {}, result.get("best") or {}
    diverged = result.get("diverged_at") or {}
    error = result.get("error") or {}
    metrics = record.metrics
    return {
        "job": job,
        "source": record.source,
        "path": record.path,
        "status": result["status"],
        **{short: config.get(key) for short, key in KEY_COLUMNS.items()},
        "epochs_run": result.get("epochs_run", len(metrics)),
        "final_epoch": final.get("epoch"),
        "final_test_acc": final.get("test_acc"),
        "final_test_acc_clean": final.get("test_acc_clean"),
        "final_train_loss": final.get("train_loss"),
        "best_test_acc": best.get("test_acc"),
        "best_epoch": best.get("epoch"),
        "best_test_acc_clean": best.get("test_acc_clean"),
        "total_seconds": result.get("total_seconds"),
        "device": result.get("device"),
        "machine": machine(result),  # the device and its hardware: what job times depend on
        "samples_per_s": metrics["samples_per_s"].mean() if len(metrics) else None,
        "diverged_epoch": diverged.get("epoch"),
        "error": error.get("message") if isinstance(error, Mapping) else str(error),
        "ended_at": result.get("ended_at"),
    }


def _extra_columns(configs: list[dict[str, Any]]) -> list[str]:
    """Config keys outside ``KEY_COLUMNS`` whose value differs between jobs."""
    known = set(KEY_COLUMNS.values())
    keys = sorted({k for c in configs for k in c} - known)
    return [k for k in keys if len({json.dumps(c.get(k), default=str) for c in configs}) > 1]


def _mark_duplicates(summary: pd.DataFrame, configs: list[dict[str, Any]]) -> pd.Series:
    """True for every job whose config another, later-ended job repeats."""
    identity = pd.Series(
        [json.dumps(c, sort_keys=True, default=str) for c in configs], index=summary.index
    )
    order = summary["ended_at"].fillna("").astype(str)
    latest = order.groupby(identity).transform("max")
    duplicate = order < latest
    # Same config and the same (latest) end time: keep the first one only.
    tied = identity[~duplicate].duplicated()
    duplicate[tied.index[tied]] = True
    return duplicate


def build_frames(records: Sequence[JobRecord]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(tidy, summary)``: one row per (job, epoch) with config and metrics; one row per job."""
    configs = [job_config(r.result) for r in records]
    extra = _extra_columns(configs)
    rows = []
    for record, config, job in zip(records, configs, _job_ids(records), strict=True):
        row = _summary_row(record, job, config)
        row.update({f"{EXTRA_PREFIX}{k}": config.get(k) for k in extra})
        rows.append(row)
    summary = pd.DataFrame(rows)
    if summary.empty:
        return pd.DataFrame(columns=[*JOB_COLUMNS, *KEY_COLUMNS, *METRIC_COLUMNS]), summary
    summary.insert(4, "duplicate", _mark_duplicates(summary, configs))
    config_columns = [*KEY_COLUMNS, *(f"{EXTRA_PREFIX}{k}" for k in extra)]
    per_job = summary[[*JOB_COLUMNS, "duplicate", *config_columns]]
    metrics = [
        r.metrics[list(METRIC_COLUMNS)].assign(job=job)
        for r, job in zip(records, summary["job"], strict=True)
        if len(r.metrics)
    ]
    if metrics:
        tidy = per_job.merge(pd.concat(metrics, ignore_index=True), on="job", how="inner")
    else:
        tidy = per_job.iloc[0:0].assign(**{c: pd.Series(dtype="float64") for c in METRIC_COLUMNS})
    return tidy.reset_index(drop=True), summary


# --- conditions and scores -----------------------------------------------------------


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


def named_conditions(
    frame: pd.DataFrame, conditions: list[str], always: tuple[str, ...] = ()
) -> list[str]:
    """The ``conditions`` that name ``frame``'s rows on a page: those whose value varies in it,
    and ``always``."""
    return [c for c in conditions if c in always or frame[c].nunique(dropna=False) > 1]


def config_key(column: str) -> str:
    """The dotted config key of a frame column: ``lr`` -> ``optim.lr``, ``cfg.a.b`` -> ``a.b``."""
    return KEY_COLUMNS.get(column) or column.removeprefix(EXTRA_PREFIX)


def missing(value: Any) -> bool:
    """Whether a value read from a frame or a record is absent: None, pd.NA or NaN (a swept
    key that a job does not have)."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def condition_label(values: Mapping[str, Any], blank: str = "none") -> str:
    """``lr=0.003, batch_size=100`` for a condition's values, a missing one as ``blank``."""
    parts = []
    for key, value in values.items():
        shown = blank if missing(value) else f"{value:g}" if isinstance(value, float) else value
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


def groups(frame: pd.DataFrame, columns: list[str]) -> Iterator[tuple[tuple, pd.DataFrame]]:
    """``frame`` grouped by ``columns`` (NaN a value of its own); one group when none."""
    if not columns:
        yield (), frame
        return
    for key, group in frame.groupby(columns, dropna=False, sort=True):
        yield (key if isinstance(key, tuple) else (key,)), group


def seed_interval(a: pd.DataFrame, b: pd.DataFrame, level: float) -> Interval:
    """``diff_interval`` of two frames of per-seed scores (columns ``score``, ``seed``)."""
    return diff_interval(
        a["score"].to_numpy(float),
        b["score"].to_numpy(float),
        level=level,
        seeds_a=a["seed"].tolist(),
        seeds_b=b["seed"].tolist(),
    )
