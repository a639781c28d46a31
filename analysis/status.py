"""``python -m analysis status [SWEEP]``: every job of a sweep by state, and the ETA.

Reads the sweep directory only (``vitbn_sweep.store.status``), so it works while the
sweep runs (locally or on Slurm) and after it was cut. A claimed job counts as running
while its owner lives (``vitbn_sweep.store.claims.Liveness``: the local process, or ``squeue``
once per Slurm array).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from vitbn_sweep.store import INCOMPLETE, NOT_STARTED, RUNNING, STATES
from vitbn_sweep.store.claims import Liveness
from vitbn_sweep.store.status import JobStatus, SweepStatus, duration, read_sweep

NO_MACHINE = "device not recorded"  # an earlier job whose result names no machine


def add_parser(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("status", help="jobs of a sweep by state, and the ETA")
    sub.add_argument(
        "sweep", nargs="?", help="the sweep dir (default: the newest sweep under outputs/)"
    )
    sub.add_argument(
        "--parallel",
        type=int,
        help="jobs that run at once, for the ETA (default: the jobs running now)",
    )
    sub.set_defaults(handler=run)


def _when(job: JobStatus, now: float) -> str:
    if job.ended:
        return duration(job.seconds) if job.seconds is not None else ""
    if job.last_active is not None:
        return f"last write {duration(now - job.last_active)} ago"
    return ""


def _row(job: JobStatus, now: float) -> list[str]:
    if job.state == NOT_STARTED:
        epoch = f"-/{job.epochs_planned or '?'}"
    else:
        epoch = f"{job.epochs_done}/{job.epochs_planned or '?'}"
    acc = f"{job.test_acc:.4f}" if job.test_acc is not None else ""
    name = f"{job.name}  ({job.detail})" if job.detail else job.name
    return [job.state, epoch, acc, _when(job, now), name]


def _table(rows: list[list[str]]) -> list[str]:
    """Columns padded to their widest cell; the last column (the job name) unpadded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]


def _eta(status: SweepStatus) -> str:
    counts = status.counts()
    left = len(status.jobs) - status.done
    if not left:
        return "every job has ended"
    if status.remaining_s is None:
        return "ETA: after the first epoch ends (no epoch timed yet)"
    compute = duration(status.remaining_s)
    if counts[RUNNING]:
        return (
            f"ETA {duration(status.eta_s or 0.0)}: {status.parallel} job(s) at once, "
            f"{compute} of compute left over {left} job(s)"
        )
    return f"nothing running now: {compute} of compute left over {left} job(s), one at a time"


def _basis(status: SweepStatus) -> str | None:
    """Where the epoch times of the jobs that timed none come from (None: nowhere else)."""
    times = status.times
    if times is None or not status.earlier:
        return None
    first = status.earlier[0].machine  # earlier_jobs: the newest machine's jobs first
    jobs = [j for j in status.earlier if j.machine == first]
    others = list(dict.fromkeys(j.machine or NO_MACHINE for j in status.earlier[len(jobs) :]))
    now = f"this command's jobs at {_depths(times.now)}, else " if times.now else ""
    scale = f", scaled x{times.scale:.2f} to this command's speed" if times.now else ""
    elsewhere = f", else per depth {', '.join(others)}" if others else ""
    return (
        f"epoch times of untimed jobs: {now}{len(jobs)} earlier job(s) of the sweep "
        f"on {first or NO_MACHINE} at {_depths(times.earlier)}{scale}, else a line in depth"
        f"{elsewhere}"
    )


def _depths(depths: Iterable[int]) -> str:
    ordered = sorted(depths)
    return f"depth{'s' * (len(ordered) > 1)} {','.join(map(str, ordered))}"


def status_text(status: SweepStatus, now: float) -> str:
    """The table of jobs (by state, then name), the counts and the ETA."""
    order = {state: i for i, state in enumerate(STATES)}
    jobs = sorted(status.jobs, key=lambda j: (order[j.state], j.name))
    header = ["state", "epoch", "test_acc", "time", "job"]
    lines = [f"sweep {status.sweep_dir}"]
    lines += _table([header, *(_row(job, now) for job in jobs)])
    counts = ", ".join(f"{n} {state}" for state, n in status.counts().items())
    n = len(status.jobs)
    known = (
        f"{n} jobs of the latest command (jobs.json)"
        if status.listed
        else f"{n} job dirs found; no jobs.json, so jobs not started yet are not counted"
    )
    lines.append(f"{counts} ({known})")
    if status.counts()[INCOMPLETE]:
        lines.append(
            f"{INCOMPLETE}: no result.json and no claim of a live run: cut short, or run "
            "by a launcher that writes no claim; the same sweep command continues it"
        )
    lines.append(_eta(status))
    basis = _basis(status)
    if basis and len(status.jobs) > status.done:
        lines.append(basis)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.sweep:
        sweep = Path(args.sweep)
    else:
        from analysis.load import newest_sweep
        from analysis.records import AnalysisError

        try:
            sweep = newest_sweep()
        except AnalysisError as exc:
            print(f"analysis: error: {exc}", file=sys.stderr)
            return 2
    if not sweep.is_dir():
        print(f"analysis: error: {sweep}: no such sweep directory", file=sys.stderr)
        return 2
    now = time.time()
    liveness = Liveness()  # a claim of a killed run, or of a cancelled Slurm job, is no run
    status = read_sweep(
        sweep, now=now, parallel=args.parallel, alive=lambda owner: liveness.alive(owner)[0]
    )
    if not status.jobs:
        print(
            f"analysis: error: {sweep}: no jobs found (no job dirs, no jobs.json)", file=sys.stderr
        )
        return 2
    print(status_text(status, now))
    return 0
