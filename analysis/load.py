"""Where results come from: job dirs on disk (or a tracker, via ``analysis.sources``), and
what Hydra recorded about each sweep (the user's ``multirun.yaml``, as
``vitbn_sweep.store.origin`` keeps it while ``resolve`` runs).

A job dir holds ``result.json`` + ``metrics.csv``, read through ``vitbn_sweep.store``
(checked: a damaged job is counted incomplete with its path and cause, never read as
data). Trackers give the same ``JobRecord``s, so everything downstream is
source-agnostic. Bad input is one ``AnalysisError``, which the CLI prints as a single line.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.records import AnalysisError, JobRecord, LoadStats, metrics_frame
from vitbn_sweep import store
from vitbn_sweep.grid import grid_size
from vitbn_sweep.store import MULTIRUN_FILE, outputs_dir
from vitbn_sweep.store.origin import doc_task, origin_doc
from vitbn_sweep.store.record import planned_jobs

SOURCES = ("files", "wandb", "mlflow")
ENTRYPOINT = "python -m vitbn_sweep -m"


# --- job dirs ----------------------------------------------------------------------------


def records_from_dirs(paths: Iterable[str | Path]) -> tuple[list[JobRecord], LoadStats]:
    """All finished jobs under ``paths`` (searched recursively), and what was left out.

    A job dir is one that a job began in (``store.started``); one without ``result.json`` is
    still running or was cut, and one with a damaged file is to run again: both are
    counted as incomplete (the damaged ones with the file and what is wrong). A result of
    a schema this code does not read is an ``AnalysisError``: the sweep is another
    version's, to read with that version.
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
        for job_dir in store.job_dirs(root, markers=store.STARTED_MARKERS):
            resolved = job_dir.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            try:
                result, rows = store.ended(job_dir)
            except store.UnknownSchema as exc:
                raise AnalysisError(str(exc)) from exc
            except store.DamagedFile as exc:
                stats.incomplete.append(f"{job_dir} (damaged: {exc})")
                continue
            if result is None:
                stats.incomplete.append(str(job_dir))
            else:
                records.append(JobRecord(result, metrics_frame(rows), "files", str(job_dir)))
    nothing = f"no results under {', '.join(stats.roots)}: no result.json found"
    return stats.found(records, nothing, "job dirs still running or cut")


# --- sweeps: what multirun.yaml says ------------------------------------------------------


@dataclass
class SweepInfo:
    """A sweep dir and the user's command that started it (overrides, launcher, grid size)."""

    path: str
    command: str
    params: dict[str, str] = field(default_factory=dict)
    expected: int | None = None  # jobs in the latest command's grid
    planned: int | None = None  # jobs every command so far planned (grid.json), if recorded
    not_started: int | None = None  # of those, the ones no job began in (a claim at most)
    config: dict[str, Any] = field(default_factory=dict)
    task: list[str] = field(default_factory=list)  # the command line's config overrides
    hydra_overrides: list[str] = field(default_factory=list)  # launcher and other hydra.*
    launcher: str | None = None  # hydra.runtime.choices["hydra/launcher"]
    cwd: str | None = None  # where the command ran (relative paths are from there)


def sweep_info(sweep_dir: str | Path) -> SweepInfo | None:
    """The ``SweepInfo`` of ``sweep_dir``, or None when it holds no readable multirun.yaml."""
    doc = origin_doc(sweep_dir)
    if doc is None:
        return None
    hydra = doc.get("hydra") or {}
    overrides = hydra.get("overrides") or {}
    task = doc_task(doc)
    params = {str(k): str(v) for k, v in ((hydra.get("sweeper") or {}).get("params") or {}).items()}
    runtime = hydra.get("runtime") or {}
    planned = planned_jobs(Path(sweep_dir))
    missing = [n for n in planned or [] if not store.started(Path(sweep_dir) / n)]
    return SweepInfo(
        path=str(sweep_dir),
        command=" ".join([ENTRYPOINT, *task]),
        params=params,
        expected=grid_size([*(f"{k}={v}" for k, v in params.items()), *task]),
        planned=None if planned is None else len(planned),
        not_started=None if planned is None else len(missing),
        config={k: v for k, v in doc.items() if k != "hydra"},
        task=task,
        hydra_overrides=[str(o) for o in (overrides.get("hydra") or [])],
        launcher=(runtime.get("choices") or {}).get("hydra/launcher"),
        cwd=runtime.get("cwd"),
    )


def find_sweeps(roots: list[str]) -> list[SweepInfo]:
    """Every sweep dir at or under ``roots`` (and the sweep dir just above a job dir root)."""
    found: dict[Path, SweepInfo] = {}
    for root in map(Path, roots):
        candidates = [root, root.parent]
        if root.is_dir():
            candidates += store.sweep_dirs(root)
        for candidate in candidates:
            info = sweep_info(candidate)
            if info is not None:
                found.setdefault(candidate.resolve(), info)
    return list(found.values())


def newest_sweep(outputs: str | Path | None = None) -> Path:
    """The most recently started sweep dir under ``outputs`` (by its multirun.yaml)."""
    root = Path(outputs) if outputs is not None else outputs_dir()
    newest = store.newest_sweep(root)
    if newest is None:
        raise AnalysisError(f"no sweep found under {root} (no {MULTIRUN_FILE}); give a path")
    return newest


# --- one entry point for every source -----------------------------------------------------


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
    stats = LoadStats(source=source)
    for _, part in loads:
        stats.roots += part.roots
        stats.incomplete += part.incomplete
    where = ", ".join(targets) or tracking_uri or "the default tracking URI"
    records = [record for part, _ in loads for record in part]
    return stats.found(records, f"no results from {source} for {where}", "runs not ended")


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
