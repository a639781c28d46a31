"""What a round of ``resolve`` costs before it runs, from the sweep's own job times.

A planned job (model, depth) is priced at the median ``total_seconds`` of the sweep's
completed jobs of that model and depth on the machine the sweep ran on last (the device and
hardware of the job that ended last, ``results.machine``: where the next round most likely
runs; two CPUs alike in name but not in speed are told apart by their chip). A depth with no timed
job there is extrapolated from the model's timed depths, by a straight line in depth (a
block costs the same at every depth; embedding and head add a constant), and said so; a
model with fewer than two timed depths leaves its jobs unpriced, never guessed. The sum is
job time, each job as long as it took in this sweep (with the jobs that ran beside it
then); jobs run side by side finish sooner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from vitbn_sweep.sweep_status import duration


@dataclass(frozen=True)
class Cost:
    """Job seconds of the priced jobs, on ``machine``; ``extrapolated``: jobs priced by the
    line in depth; ``unpriced``: jobs of a model with fewer than two timed depths."""

    seconds: float
    jobs: int
    extrapolated: int
    unpriced: int
    machine: str | None

    def text(self) -> str:
        """``about 9h30m of job time at this sweep's cpu (AMD EPYC, …) times (median per model
        and depth)``."""
        if self.machine is None:
            return "no timed job in this sweep to price the round by"
        text = (
            f"about {duration(self.seconds)} of job time at this sweep's {self.machine} times "
            "(median per model and depth)"
        )
        if self.extrapolated:
            text += f"; {self.extrapolated} job(s) at depths not timed there, from a line in depth"
        if self.unpriced:
            text += f"; {self.unpriced} job(s) not priced: their model has too few timed depths"
        return text


def latest_machine(summary: pd.DataFrame) -> str | None:
    """The machine of the completed job that ended last, or None."""
    done = summary[(summary["status"] == "completed") & summary["machine"].notna()]
    if done.empty:
        return None
    return str(done.sort_values("ended_at")["machine"].iloc[-1])


def job_seconds(summary: pd.DataFrame, machine: str) -> dict[tuple[str, int], float]:
    """Median ``total_seconds`` per (model, depth) of the completed jobs on ``machine``."""
    done = summary[
        (summary["status"] == "completed")
        & (summary["machine"] == machine)
        & summary["total_seconds"].notna()
    ]
    medians = done.groupby(["model", "depth"])["total_seconds"].median()
    return {(str(m), int(d)): float(s) for (m, d), s in medians.items()}


def depth_line(seconds: dict[tuple[str, int], float], model: str) -> np.ndarray | None:
    """(slope, intercept) of a least-squares line of ``model``'s seconds in depth; None
    with fewer than two timed depths."""
    timed = sorted((d, s) for (m, d), s in seconds.items() if m == model)
    if len(timed) < 2:
        return None
    depths, secs = zip(*timed, strict=True)
    return np.polyfit(depths, secs, 1)


def round_cost(jobs: Sequence[tuple[str, int]], summary: pd.DataFrame) -> Cost:
    """The cost of ``jobs``, (model, depth) per planned job, at ``summary``'s job times."""
    machine = latest_machine(summary) if "machine" in summary else None
    if machine is None:
        return Cost(0.0, len(jobs), 0, len(jobs), None)
    seconds = job_seconds(summary, machine)
    total, extrapolated, unpriced = 0.0, 0, 0
    for model, depth in jobs:
        if (model, int(depth)) in seconds:
            total += seconds[(model, int(depth))]
            continue
        line = depth_line(seconds, model)
        guess = float(np.polyval(line, depth)) if line is not None else 0.0
        if guess > 0:
            total, extrapolated = total + guess, extrapolated + 1
        else:
            unpriced += 1
    return Cost(total, len(jobs), extrapolated, unpriced, machine)


def planned_jobs(plans: Sequence[Any]) -> list[tuple[str, int]]:
    """(model, depth) of each job that seeded cell plans (``resolve.CellPlan``) launch."""
    return [(model, plan.depth) for plan in plans for model in plan.models]
