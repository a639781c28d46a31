"""Where results come from: job dirs on disk, or a tracker through ``analysis.sources``."""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path

from analysis.errors import AnalysisError
from analysis.load import JobRecord, LoadStats, records_from_dirs
from analysis.sweep import SweepInfo, find_sweeps, newest_sweep, outputs_dir

SOURCES = ("files", "wandb", "mlflow")


def _merge(loads: Sequence[tuple[list[JobRecord], LoadStats]], source: str) -> LoadStats:
    stats = LoadStats(source=source)
    for _, part in loads:
        stats.roots += part.roots
        stats.incomplete += part.incomplete
        stats.results += part.results
    return stats


def _from_tracker(
    source: str, targets: Sequence[str], *, group: str | None, tracking_uri: str | None
) -> tuple[list[JobRecord], LoadStats]:
    """Records read back from a tracker by ``analysis.sources`` (imported only when asked for).

    wandb: each target is a project (``ENTITY/PROJECT`` or ``PROJECT``), ``group`` a sweep.
    mlflow: the targets are experiment names (sweep names; none: all) at ``tracking_uri``.
    """
    try:
        module = importlib.import_module("analysis.sources")
    except ModuleNotFoundError as exc:
        if exc.name == "analysis.sources":
            raise AnalysisError(
                f"--source {source}: tracker read-back (analysis/sources.py) is not available"
            ) from exc
        raise AnalysisError(f"--source {source} needs the package {exc.name!r}") from exc
    reader = getattr(module, f"records_from_{source}", None)
    if reader is None:
        raise AnalysisError(f"--source {source}: analysis.sources has no records_from_{source}")
    if source == "wandb":
        if not targets:
            raise AnalysisError("--source wandb needs a project: ENTITY/PROJECT")
        loads = [reader(target, group=group) for target in targets]
    else:
        loads = [reader(tracking_uri, list(targets) or None)]
    records = [record for part, _ in loads for record in part]
    if not records:
        where = ", ".join(targets) or tracking_uri or "the default tracking URI"
        raise AnalysisError(f"no results from {source} for {where}")
    return records, _merge(loads, source)


def load_results(
    source: str,
    targets: Sequence[str],
    *,
    group: str | None = None,
    tracking_uri: str | None = None,
) -> tuple[list[JobRecord], LoadStats, list[SweepInfo]]:
    """Records, load stats and (for files) the sweeps found. Files default to the newest sweep."""
    if source not in SOURCES:
        raise AnalysisError(f"unknown source {source!r} (one of {', '.join(SOURCES)})")
    if source != "files":
        records, stats = _from_tracker(source, targets, group=group, tracking_uri=tracking_uri)
        return records, stats, []
    paths = list(targets) or [str(newest_sweep())]
    records, stats = records_from_dirs(paths)
    return records, stats, find_sweeps(paths)


def default_out(source: str, roots: Sequence[str]) -> Path:
    """``<sweep>/report`` for one dir; ``<common parent>/report`` for several; else outputs/."""
    if source == "files" and roots:
        if len(roots) == 1:
            return Path(roots[0]) / "report"
        return Path(os.path.commonpath([os.path.abspath(r) for r in roots])) / "report"
    return outputs_dir() / f"report-{source}"
