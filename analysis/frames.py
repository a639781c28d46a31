"""``JobRecord``s into two pandas frames: tidy (one row per job and epoch) and summary (per job).

Config values appear under short names for the settings the study varies (``KEY_COLUMNS``)
and, for any other config value that differs between the loaded jobs, under ``cfg.<dotted
key>``. Jobs with the same config (bar keys that do not change the maths) are duplicates:
all but the latest are flagged ``duplicate`` and left out of the analysis.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from analysis.load import METRIC_COLUMNS, JobRecord
from vitbn_sweep.identity import job_identity

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


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> ``{"a.b.c": scalar}``; lists become JSON strings (hashable, CSV-safe)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            flat[name] = json.dumps(list(value))
        else:
            flat[name] = value
    return flat


def job_config(result: Mapping[str, Any]) -> dict[str, Any]:
    """The job's flattened identity: its config without the keys that do not change its results."""
    return flatten(job_identity(result["config"]))


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
