"""What Hydra recorded about a sweep (``multirun.yaml``): its command and its grid."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from analysis.errors import AnalysisError
from analysis.load import SKIP_DIRS

MULTIRUN_FILE = "multirun.yaml"
ENTRYPOINT = "python -m vitbn_sweep -m"


@dataclass
class SweepInfo:
    """A sweep dir: the command that started it, its swept parameters, its grid size."""

    path: str
    command: str
    params: dict[str, str] = field(default_factory=dict)
    expected: int | None = None
    config: dict[str, Any] = field(default_factory=dict)


def _grid_size(overrides: list[str]) -> int | None:
    """Jobs in the grid these overrides span, per Hydra's own parser; None if unknowable."""
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        size = 1
        for override in OverridesParser.create().parse_overrides(overrides):
            if override.is_sweep_override():
                size *= len(list(override.sweep_string_iterator()))
        return size
    except Exception:  # noqa: BLE001 - glob sweeps and future syntax: size unknown, not fatal
        return None


def read_sweep(sweep_dir: str | Path) -> SweepInfo | None:
    """The ``SweepInfo`` of ``sweep_dir``, or None when it holds no readable multirun.yaml."""
    path = Path(sweep_dir) / MULTIRUN_FILE
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    hydra = doc.get("hydra") or {}
    task = [str(o) for o in ((hydra.get("overrides") or {}).get("task") or [])]
    params = {str(k): str(v) for k, v in ((hydra.get("sweeper") or {}).get("params") or {}).items()}
    # Command-line overrides win over the config's sweeper params for the same key.
    given = {o.split("=", 1)[0].lstrip("+~") for o in task}
    grid = [f"{k}={v}" for k, v in params.items() if k not in given] + task
    config = {k: v for k, v in doc.items() if k != "hydra"}
    command = " ".join([ENTRYPOINT, *task])
    return SweepInfo(str(sweep_dir), command, params, _grid_size(grid), config)


def find_sweeps(roots: list[str]) -> list[SweepInfo]:
    """Every sweep dir at or under ``roots`` (and the sweep dir just above a job dir root)."""
    found: dict[Path, SweepInfo] = {}
    for root in map(Path, roots):
        candidates = [root, root.parent]
        if root.is_dir():
            candidates += [
                p.parent
                for p in root.rglob(MULTIRUN_FILE)
                if not SKIP_DIRS & set(p.relative_to(root).parts)
            ]
        for candidate in candidates:
            info = read_sweep(candidate)
            if info is not None:
                found.setdefault(candidate.resolve(), info)
    return list(found.values())


def outputs_dir() -> Path:
    """Where sweeps go: ``$VITBN_OUTPUT_DIR``, else ``./outputs`` (as in conf/config.yaml)."""
    return Path(os.environ.get("VITBN_OUTPUT_DIR") or "outputs")


def newest_sweep(outputs: str | Path | None = None) -> Path:
    """The most recently started sweep dir under ``outputs`` (by its multirun.yaml)."""
    root = Path(outputs) if outputs is not None else outputs_dir()
    files = [p for p in root.rglob(MULTIRUN_FILE) if not SKIP_DIRS & set(p.parts)]
    if not files:
        raise AnalysisError(f"no sweep found under {root} (no {MULTIRUN_FILE}); give a path")
    return max(files, key=lambda p: p.stat().st_mtime).parent
