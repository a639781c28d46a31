"""A job's tracker run, derived from its directory alone (what the job computes is
``vitbn_sweep.identity``'s).

Multirun jobs live in ``<paths.outputs>/<sweep_name>/<override_dirname>/``, so the
path relative to the sweep dir *is* the job's overrides, and running the same sweep
again addresses the same directory. The tracker run id is a hash of
``<sweep_name>/<override_dirname>``: stable across machines and restarts, so a
resumed job continues the same tracker run.

A job outside the sweep dir (a single run in ``<paths.outputs>/runs/<time>/``) is
identified by its path relative to ``paths.outputs``, or else by its absolute path.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitbn_sweep.identity import job_labels

ID_HASH_CHARS = 16


@dataclass(frozen=True)
class TrackerRun:
    sweep: str  # the sweep name (config ``sweep_name``)
    job: str  # override_dirname inside a sweep, else the job dir's relative/absolute path
    key: str  # what the run id hashes: ``<sweep>/<job>`` inside a sweep
    run_id: str  # ``vb-`` + 16 hex chars of sha1(key): valid for wandb and MLflow tags
    in_sweep: bool


def tracker_run(config: Mapping[str, Any], job_dir: Path) -> TrackerRun:
    """The tracker run of the job that runs ``config`` in ``job_dir``."""
    sweep = str(config["sweep_name"])
    outputs = Path(config["paths"]["outputs"]).resolve()
    job_path = Path(job_dir).resolve()
    in_sweep = job_path.is_relative_to(outputs / sweep)
    if in_sweep:
        job = job_path.relative_to(outputs / sweep).as_posix()
        job = "" if job == "." else job
        key = f"{sweep}/{job}"
    elif job_path.is_relative_to(outputs):
        job = key = job_path.relative_to(outputs).as_posix()
    else:
        job = key = job_path.as_posix()
    digest = hashlib.sha1(key.encode()).hexdigest()[:ID_HASH_CHARS]
    return TrackerRun(sweep, job, key, f"vb-{digest}", in_sweep)


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"depth": 3}}`` -> ``{"model.depth": 3}`` (lists stay leaves)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def param_text(value: Any) -> str:
    """A config leaf as a tracker param string: strings as is, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def run_tags(config: Mapping[str, Any], extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Tags every tracker run carries: the job's lead (model, depth, lr, seed), its
    sweep, plus ``extra``."""
    tags = [*job_labels(config), f"sweep={config['sweep_name']}", *map(str, extra)]
    return list(dict.fromkeys(tag[:64] for tag in tags))
