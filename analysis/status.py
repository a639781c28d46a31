"""``python -m analysis status [SWEEP]``: every job of a sweep by state, and the ETA.

Reads the sweep directory only (``vitbn_sweep.store.status``), so it works while the
sweep runs (locally or on Slurm) and after it was cut. A claimed job counts as running
while its owner lives (``vitbn_sweep.store.claims.Liveness``: the local process, or ``squeue``
once per Slurm array).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from analysis.load import newest_sweep
from analysis.records import AnalysisError
from vitbn_sweep.store.claims import Liveness
from vitbn_sweep.store.status import read_sweep, status_text


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


def run(args: argparse.Namespace) -> int:
    sweep = Path(args.sweep) if args.sweep else newest_sweep()
    if not sweep.is_dir():
        raise AnalysisError(f"{sweep}: no such sweep directory")
    now = time.time()
    liveness = Liveness()  # a claim of a killed run, or of a cancelled Slurm job, is no run
    status = read_sweep(
        sweep, now=now, parallel=args.parallel, alive=lambda owner: liveness.alive(owner)[0]
    )
    if not status.jobs:
        raise AnalysisError(f"{sweep}: no jobs found (no job dirs, no jobs.json)")
    print(status_text(status, now))
    return 0
