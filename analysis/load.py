"""Read job results (``result.json`` + ``metrics.csv``) into ``JobRecord``s.

The results contract is documented in ``vitbn_sweep/results.py``; this module is
the only place that reads those files. Other sources (trackers) produce the same
``JobRecord``s, so everything downstream is source-agnostic.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.errors import AnalysisError
from vitbn_sweep.results import METRIC_COLUMNS, METRICS_FILE, RESULT_FILE, STATUSES

SUPPORTED_SCHEMA_VERSIONS = (1,)  # result.json schema versions this reader understands
SKIP_DIRS = frozenset({"report"})


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
    if not isinstance(result, dict):
        raise AnalysisError(f"{where}: not a result record (expected a JSON object)")
    version = result.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        readable = ", ".join(map(str, SUPPORTED_SCHEMA_VERSIONS))
        raise AnalysisError(
            f"{where}: incompatible result schema_version {version!r}; "
            f"this analysis reads version {readable}"
        )
    if result.get("status") not in STATUSES or not isinstance(result.get("config"), dict):
        raise AnalysisError(
            f"{where}: malformed result (status {result.get('status')!r}, config missing?)"
        )
    return result


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


def _walk(root: Path) -> Iterable[Path]:
    """Every directory under ``root`` (itself included), skipping ``report/`` and hidden dirs."""
    yield root
    for child in sorted(root.iterdir()):
        if child.is_dir() and child.name not in SKIP_DIRS and not child.name.startswith("."):
            yield from _walk(child)


def _is_job_dir(path: Path) -> bool:
    return any((path / name).exists() for name in (RESULT_FILE, METRICS_FILE, ".hydra"))


def read_job(job_dir: Path) -> JobRecord:
    """The record of one job dir that holds a ``result.json``."""
    result_path = job_dir / RESULT_FILE
    try:
        result = json.loads(result_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AnalysisError(f"{result_path}: unreadable result ({exc})") from exc
    check_schema(result, str(result_path))
    metrics_path = job_dir / METRICS_FILE
    metrics = pd.read_csv(metrics_path) if metrics_path.exists() else empty_metrics()
    return JobRecord(result, normalize_metrics(metrics), source="files", path=str(job_dir))


def records_from_dirs(paths: Iterable[str | Path]) -> tuple[list[JobRecord], LoadStats]:
    """All finished jobs under ``paths`` (searched recursively), and what was left out.

    A job dir is one that holds ``result.json``, ``metrics.csv`` or ``.hydra/``; one
    without ``result.json`` is still running or was cut, and is counted as incomplete.
    """
    roots = [Path(p) for p in paths]
    if not roots:
        raise AnalysisError("no results path given")
    stats = LoadStats(roots=[str(r) for r in roots])
    records: list[JobRecord] = []
    seen: set[Path] = set()
    for root in roots:
        if not root.is_dir():
            raise AnalysisError(f"{root}: no such directory")
        for job_dir in _walk(root):
            resolved = job_dir.resolve()
            if resolved in seen or not _is_job_dir(job_dir):
                continue
            seen.add(resolved)
            if (job_dir / RESULT_FILE).exists():
                records.append(read_job(job_dir))
            else:
                stats.incomplete.append(str(job_dir))
    stats.results = len(records)
    if not records:
        where = ", ".join(stats.roots)
        running = (
            f" ({stats.n_incomplete} job dirs still running or cut)" if stats.incomplete else ""
        )
        raise AnalysisError(f"no results under {where}: no result.json found{running}")
    return records, stats
