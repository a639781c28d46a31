"""A finished job as the analysis sees it, whatever its source (job dirs, wandb, MLflow).

The leaf both readers import (``analysis.load`` for job dirs, ``analysis.sources`` for the
trackers), so neither imports the other's module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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

    def found(
        self, records: list[JobRecord], nothing: str, unended: str
    ) -> tuple[list[JobRecord], LoadStats]:
        """``(records, self)``, counted; none is an ``AnalysisError`` that says ``nothing``
        and how many it left out as ``unended`` (every source ends its load here)."""
        self.results = len(records)
        if not records:
            left = f" ({self.n_incomplete} {unended})" if self.incomplete else ""
            raise AnalysisError(f"{nothing}{left}")
        return records, self


def check_schema(result: Any, where: str) -> dict[str, Any]:
    """Return ``result`` if this analysis can read it, else raise a one-line ``AnalysisError``."""
    try:
        return store.check_result(result, where)
    except store.DamagedFile as exc:
        raise AnalysisError(str(exc)) from exc


def metrics_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Metrics rows (``METRIC_COLUMNS``) -> the contract's frame: one row per epoch, sorted.

    Every source's rows go through here: a job dir's (one per epoch, in order) and a
    tracker's (any order; a resumed run logs an epoch again, and the last one wins).
    """
    frame = pd.DataFrame(
        [{c: row.get(c) for c in METRIC_COLUMNS} for row in rows],
        columns=list(METRIC_COLUMNS),
        dtype="float64",
    )
    frame = frame.dropna(subset=["epoch"]).astype({"epoch": "int64"})
    frame = frame.sort_values("epoch", kind="stable").drop_duplicates("epoch", keep="last")
    return frame.reset_index(drop=True)
