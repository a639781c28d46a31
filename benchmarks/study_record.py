"""The GPU study's record: ``benchmarks/gpu-<host>-<date>/study.json``.

    python -m benchmarks.study_record OUT/study.json --wall-s 212 --device "NVIDIA H200" \
        --launcher engine RESULTS/warmup RESULTS/article_full

Says whether the whole study ended, not only how long it ran: per sweep the jobs planned
(its ``jobs.json``) and those ended (completed or diverged, as the sweep's own status reads
them), and the commit that ran it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from vitbn_sweep.store.status import read_sweep


def commit() -> str:
    """The checkout's commit, ``+dirty`` when it has uncommitted changes; on a copy without
    ``.git`` (a lent device machine) ``STUDY_COMMIT``, which ``make device-bundle`` records."""
    if os.environ.get("STUDY_COMMIT"):
        return os.environ["STUDY_COMMIT"]
    run = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True, check=False)  # noqa: E731
    head = run("rev-parse", "HEAD").stdout.strip() or "unknown"
    return head + ("+dirty" if run("status", "--porcelain", "--untracked-files=no").stdout else "")


def record(sweeps: list[Path], *, wall_s: float, device: str, launcher: str) -> dict[str, Any]:
    per_sweep = {}
    for sweep in sweeps:
        status = read_sweep(sweep)
        per_sweep[sweep.name] = {"jobs_planned": len(status.jobs), "jobs_ended": status.done,
                                 "states": status.counts()}  # fmt: skip
    return {
        "study_wall_s": round(wall_s, 1),
        "jobs_planned": sum(s["jobs_planned"] for s in per_sweep.values()),
        "jobs_ended": sum(s["jobs_ended"] for s in per_sweep.values()),
        "device": device,
        "launcher": launcher,
        "commit": commit(),
        "sweeps": per_sweep,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("sweeps", type=Path, nargs="+")
    parser.add_argument("--wall-s", type=float, required=True)
    parser.add_argument("--device", required=True)
    parser.add_argument("--launcher", required=True)
    args = parser.parse_args()
    missing = [str(s) for s in args.sweeps if not s.is_dir()]
    rec = record([s for s in args.sweeps if s.is_dir()], wall_s=args.wall_s, device=args.device,
                 launcher=args.launcher)  # fmt: skip
    rec["sweeps_missing"] = missing  # a study cut before a sweep began says so
    args.out.write_text(json.dumps(rec, indent=1) + "\n")
    print(json.dumps({k: v for k, v in rec.items() if k != "sweeps"}))


if __name__ == "__main__":
    main()
