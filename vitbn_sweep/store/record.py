"""What a sweep directory records of each command run into it.

``multirun.yaml``   the latest command's composed config (Hydra's convention)
``jobs.json``       the job directories of the latest command, all of them (also the
                    ones not started yet), so a status reader knows the whole grid
``grid.json``       the job directories of every command so far (their union, in the
                    order first planned): what the sweep dir was asked for, which a
                    later subset command (``model.depth=5``) does not shrink
``commands.jsonl``  one line per command when it starts (argv, launcher, counts) and
                    one when it ends (the outcome of every job): the sweep's history,
                    never overwritten

Imports nothing heavy: the sweeper runs it on a login node.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vitbn_sweep import store
from vitbn_sweep.results import now
from vitbn_sweep.store import COMMANDS_FILE, GRID_FILE, JOBS_FILE, MULTIRUN_FILE


@dataclass
class SweepPlan:
    """Every job of one sweep command, its directory, and what happens to it."""

    jobs: list[Sequence[str]]
    job_dirs: dict[tuple[str, ...], Path]
    pending: list[Sequence[str]] = field(default_factory=list)  # launched by this command
    ended: list[Sequence[str]] = field(default_factory=list)  # skipped: ended before
    elsewhere: dict[tuple[str, ...], str] = field(default_factory=dict)  # live foreign claims
    identities: dict[tuple[str, ...], dict[str, Any]] = field(default_factory=dict)  # pending's

    def dir(self, overrides: Sequence[str]) -> Path:
        """The directory of the job with these overrides."""
        return self.job_dirs[tuple(overrides)]


@dataclass
class Summary:
    line: str
    counts: Mapping[str, int]

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)


def start(sweep_dir: Path, config: DictConfig, plan: SweepPlan) -> dict[str, Any]:
    """Record a command that starts; returns its record (for ``finish``)."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    store.write_yaml(sweep_dir / MULTIRUN_FILE, config)
    names = [plan.dir(o).name for o in plan.jobs]
    grid = planned_jobs(sweep_dir) or []  # read before jobs.json is replaced (an old sweep's)
    known = set(grid)
    grid += [name for name in names if name not in known]
    store.write_json(sweep_dir / GRID_FILE, grid)
    store.write_json(sweep_dir / JOBS_FILE, names)
    choices = OmegaConf.select(config, "hydra.runtime.choices", default={}) or {}
    record = {
        "event": "start",
        "at": now(),
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "launcher": choices.get("hydra/launcher"),
        "sweep_dir": str(sweep_dir),
        "jobs": len(plan.jobs),
        "ended_before": len(plan.ended),
        "running_elsewhere": len(plan.elsewhere),
        "launched": len(plan.pending),
    }
    store.append_line(sweep_dir / COMMANDS_FILE, record)
    _unended[id(record)] = (record, plan)
    return record


# A command cut short (Ctrl-C, or SIGTERM: what ``kill`` and Slurm send before a timeout)
# unwinds as an exception: jobs keep their checkpoints and release their claims on the way,
# and its end line is written when the process exits.
_unended: dict[int, tuple[dict[str, Any], SweepPlan]] = {}
_signal: list[str] = []  # the signal that cut this process short, if any


def interrupt(signum: int, frame: Any) -> None:
    """Signal handler: end the command as Ctrl-C does (``KeyboardInterrupt``), naming the
    signal. Installed for SIGINT and SIGTERM by the command line (``vitbn_sweep.__main__``)."""
    name = signal.Signals(signum).name
    _signal.append(name)
    raise KeyboardInterrupt(name)


@atexit.register
def _end_unended() -> None:
    for record, plan in list(_unended.values()):
        finish(record, plan, {}, interrupted=_signal[-1] if _signal else "cut short")


def _names(path: Path) -> list[str] | None:
    """The job directory names that the JSON list at ``path`` holds; None when there is none."""
    names = store.read_json(path)
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        return names
    return None


def listed_jobs(sweep_dir: Path) -> list[str] | None:
    """The latest command's jobs (``jobs.json``), or None when there is no such list."""
    return _names(sweep_dir / JOBS_FILE)


def planned_jobs(sweep_dir: Path) -> list[str] | None:
    """Every job any command into ``sweep_dir`` planned (``grid.json``), or None if unknown.

    A sweep dir from before ``grid.json`` existed: the latest command's jobs (``jobs.json``).
    """
    return _names(sweep_dir / GRID_FILE) or listed_jobs(sweep_dir)


def commands(sweep_dir: Path) -> list[dict[str, Any]]:
    """The records of ``commands.jsonl``, oldest first (``store.read_lines``)."""
    return store.read_lines(sweep_dir / COMMANDS_FILE)


def last_start(sweep_dir: Path) -> float | None:
    """When the latest command into ``sweep_dir`` started (``commands.jsonl``), or None.

    Not the mtime of ``jobs.json``: a checkout or a copy of the sweep directory resets it.
    """
    for entry in reversed(commands(sweep_dir)):
        if entry.get("event") == "start":
            try:
                return datetime.fromisoformat(entry["at"]).timestamp()
            except (ValueError, TypeError, KeyError):
                continue
    return None


def _status(job_dir: Path) -> str:
    """The job's ended status; "not ended" also for a damaged result (it runs again)."""
    try:
        result = store.read_result(job_dir)
    except store.DamagedFile:
        return "not ended"
    return "not ended" if result is None else str(result["status"])


def finish(
    record: dict[str, Any],
    plan: SweepPlan,
    errors: Mapping[tuple[str, ...], BaseException],
    interrupted: str | None = None,
) -> Summary:
    """Record how the command ended; the summary line says it in one line.

    ``interrupted``: the signal that cut the command short (SIGINT, SIGTERM), if any.
    """
    sweep_dir = Path(record["sweep_dir"])
    _unended.pop(id(record), None)

    def status(overrides: Sequence[str]) -> str:  # a job that failed before it wrote: failed
        found = _status(plan.dir(overrides))
        return "failed" if found == "not ended" and tuple(overrides) in errors else found

    launched = Counter(status(o) for o in plan.pending)
    failed_before = sum(_status(plan.dir(o)) == "failed" for o in plan.ended)
    counts = {
        "completed": launched["completed"],
        "diverged": launched["diverged"],
        "failed": launched["failed"] + failed_before,
        "not ended": launched["not ended"],
        "skipped": len(plan.ended),
        "running elsewhere": len(plan.elsewhere),
    }
    label = {"skipped": "skipped (ended before)"} if counts["skipped"] else {}
    line = f"sweep {sweep_dir}: {len(plan.jobs)} jobs: " + ", ".join(
        f"{n} {label.get(what, what)}" for what, n in counts.items()
    )
    end = {
        "event": "end",
        "at": now(),
        "pid": os.getpid(),
        "counts": counts,
        "errors": {plan.dir(k).name: f"{type(e).__name__}: {e}" for k, e in errors.items()},
    }
    if interrupted:
        end["interrupted"] = interrupted
    try:
        store.append_line(sweep_dir / COMMANDS_FILE, end)
    except store.WriteError as exc:  # a full disk: the summary line says what is not recorded
        line += f"; not recorded ({exc})"
    return Summary(line, counts)
