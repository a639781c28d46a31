"""What every tracker shares: its interface (``Tracker``), and a job's tracker run: its id,
name, labels and place, the one description every tracker logs.

What the job computes is ``vitbn_sweep.identity``'s; its tracker run derives from its
directory alone. Multirun jobs live in ``<paths.outputs>/<sweep_name>/<job_dirname>/``,
so the path relative to the sweep dir *is* the job's identity overrides, and running
the same sweep again addresses the same directory. The run id is a hash of
``<sweep_name>/<job_dirname>``: stable across machines and restarts, so a resumed job
continues the same tracker run.

A job outside the sweep dir (a single run in ``<paths.outputs>/runs/<time>/``) is
identified by its path relative to ``paths.outputs``, or else by its absolute path.

The run name leads with model, depth, lr and seed (``vitbnffn-d4-lr0.005-s2``), as
trackers' run tables cut names short; the job's other overrides (its directory name)
follow in a short form, e.g. ``vit-d1-lr0.003-s0 epochs=2,train_size=2000``. The live
trackers (``logger=wandb``, ``logger=mlflow``) and ``python -m analysis export`` all
describe runs here. This module stands apart from the factory (``build_tracker`` in the
package's ``__init__``) so that imports run one way: the factory imports the trackers,
and they import this.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from vitbn_sweep.identity import DIRNAME_SEP, LEAD_KEYS, job_lead, split_overrides
from vitbn_sweep.schema import override_key

ID_HASH_CHARS = 16
# Overrides that the name's lead already says (a group choice ``model=vit`` included).
LEAD_OVERRIDES = frozenset({"model", *LEAD_KEYS.values()})


class Tracker:
    """The no-op tracker (``logger=none``) and the interface of every tracker."""

    def start(self, config: Mapping[str, Any]) -> None:
        """The job starts (or resumes) with this resolved config."""

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        """One finished epoch's metrics row (``store.METRIC_COLUMNS``)."""

    def finish(self, record: Mapping[str, Any]) -> None:
        """The job ended; ``record`` is its ``result.json`` content."""


@dataclass(frozen=True)
class TrackerRun:
    """How a job appears in every tracker: built once (``tracker_run``), logged by each."""

    sweep: str  # the sweep name (config ``sweep_name``)
    job: str  # its path relative to the sweep dir (the overrides), else to outputs, or absolute
    key: str  # what the run id hashes: ``<sweep>/<job>`` inside a sweep
    run_id: str  # ``vb-`` + 16 hex chars of sha1(key): valid for wandb and MLflow tags
    in_sweep: bool
    name: str  # ``run_name``: what the trackers' run tables show
    labels: dict[str, str]  # the job's lead (model, depth, lr, seed) and its sweep
    job_dir: Path  # resolved: where the job's result files are
    sweep_dir: Path | None  # the sweep dir above ``job_dir``; None for a job outside one


def hashed_id(prefix: str, key: str) -> str:
    """A tracker run id for ``key``: ``prefix-`` + 16 hex chars of its sha1."""
    return f"{prefix}-{hashlib.sha1(key.encode()).hexdigest()[:ID_HASH_CHARS]}"


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
    return TrackerRun(
        sweep=sweep,
        job=job,
        key=key,
        run_id=hashed_id("vb", key),
        in_sweep=in_sweep,
        name=run_name(config, job if in_sweep else ""),
        labels={**lead_labels(config), "sweep": sweep},
        job_dir=job_path,
        sweep_dir=outputs / sweep if in_sweep and job else None,
    )


def lead_labels(config: Mapping[str, Any]) -> dict[str, str]:
    """The job's lead (model, depth, lr, seed) as text, lr as ``%g``: what the run's name
    starts with and its tags say."""
    model, depth, lr, seed = job_lead(config).values()
    return {"model": str(model), "depth": str(depth), "lr": f"{float(lr):g}", "seed": str(seed)}


def run_tags(identity: TrackerRun, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The run's labels as a list of tags (``["vit", "depth=3", ..., "sweep=grid_b"]``),
    plus ``extra``: for a tracker whose tags are words, not key-value pairs."""
    model, *rest = identity.labels.items()
    tags = [model[1], *(f"{key}={value}" for key, value in rest), *map(str, extra)]
    return list(dict.fromkeys(tag[:64] for tag in tags))


def short_override(override: str) -> str:
    """``data.train_size=2000`` -> ``train_size=2000``: the key without its top-level group."""
    key = override_key(override)
    value = override.split("=", 1)[1] if "=" in override else ""
    return f"{key.split('.', 1)[-1]}={value}"


def run_name(config: Mapping[str, Any], job: str = "") -> str:
    """The run name of the job that runs ``config``; ``job``: its directory in the sweep
    (its path relative to the sweep dir, its overrides); empty for a job outside a sweep."""
    lead = "{model}-d{depth}-lr{lr}-s{seed}".format(**lead_labels(config))
    dirname = PurePosixPath(job).name if job else ""
    rest = [
        short_override(o)
        for o in split_overrides(dirname)
        if "=" in o and override_key(o) not in LEAD_OVERRIDES
    ]
    return f"{lead} {DIRNAME_SEP.join(rest)}" if rest else lead
