"""A finished job as the analysis sees it, whatever its source (job dirs, wandb, MLflow).

The leaf both readers import (``analysis.load`` for job dirs, ``analysis.sources`` for the
trackers), so neither imports the other's module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vitbn_sweep import store
from vitbn_sweep.store import METRIC_COLUMNS


class AnalysisError(Exception):
    """Input the analysis cannot use (no results, an incompatible schema, a bad argument)."""


@dataclass
class JobRecord:
    """One finished job: its ``result.json`` dict and its per-epoch metrics."""

    result: dict[str, Any]
    metrics: pd.DataFrame
    source: str
    path: str | None = None


@dataclass
class LoadStats:
    """What a load found besides the records: where it looked and what it left out."""

    roots: list[str] = field(default_factory=list)
    source: str = "files"
    results: int = 0
    incomplete: list[str] = field(default_factory=list)

    @property
    def n_incomplete(self) -> int:
        return len(self.incomplete)


def check_schema(result: Any, where: str) -> dict[str, Any]:
    """Return ``result`` if this analysis can read it, else raise a one-line ``AnalysisError``."""
    try:
        return store.check_result(result, where)
    except store.DamagedFile as exc:
        raise AnalysisError(str(exc)) from exc


def empty_metrics() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in METRIC_COLUMNS})


def normalize_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    """The contract's columns in order (missing ones as NaN), sorted by epoch."""
    out = metrics.copy()
    for column in METRIC_COLUMNS:
        if column not in out:
            out[column] = float("nan")
    out = out[[*METRIC_COLUMNS, *[c for c in out if c not in METRIC_COLUMNS]]]
    out["epoch"] = pd.to_numeric(out["epoch"], errors="coerce")
    return out.dropna(subset=["epoch"]).astype({"epoch": "int64"}).sort_values("epoch")
