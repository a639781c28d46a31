"""What a round of ``resolve`` costs before it runs, from the sweep's own job times.

A planned job (model, depth) is priced at the median ``total_seconds`` of the sweep's
completed jobs of that model and depth on the machine the sweep ran on last (the device and
hardware of the job that ended last, ``results.machine``: where the next round most likely
runs; two CPUs alike in name but not in speed are told apart by their chip). A depth with no timed
job there is extrapolated from the model's timed depths, by a straight line in depth (a
block costs the same at every depth; embedding and head add a constant), and said so. A
job that machine cannot price (its model has fewer than two timed depths there: a sweep
just moved to a new chip) is priced at another machine of the same device that can, the
one with the most completed jobs first, and said so with that machine's name: measured
elsewhere, not guessed, but its speed may differ. A CPU job is never priced at a GPU's
times, nor the reverse; a job no machine of its device can price stays unpriced. The sum
is job time, each job as long as it took in this sweep (with the jobs that ran beside it
then); jobs run side by side finish sooner.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from vitbn_sweep.sweep_status import duration


@dataclass(frozen=True)
class Cost:
    """Job seconds of the priced jobs, on ``machine``; ``extrapolated``: jobs priced by the
    line in depth; ``unpriced``: jobs of a model with fewer than two timed depths on any
    machine of its device; ``elsewhere``: (machine, jobs) priced at another machine's times."""

    seconds: float
    jobs: int
    extrapolated: int
    unpriced: int
    machine: str | None
    elsewhere: tuple[tuple[str, int], ...] = ()

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
        if self.elsewhere:
            where = ", ".join(f"{n} job(s) at {m} times" for m, n in self.elsewhere)
            text += (
                f"; {where}: another machine, as this one has too few timed depths for them "
                "(its speed may differ)"
            )
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


def _device(machine: str) -> str:
    """``cpu`` of ``cpu (AMD EPYC, AVX512)``: the device ``results.machine`` names first."""
    return machine.split(" (", 1)[0]


def other_machines(summary: pd.DataFrame, machine: str) -> list[str]:
    """The other machines of ``machine``'s device that completed jobs, most jobs first."""
    done = summary[(summary["status"] == "completed") & summary["machine"].notna()]
    counts = Counter(m for m in map(str, done["machine"]) if _device(m) == _device(machine))
    return [m for m, _ in counts.most_common() if m != machine]


def depth_line(seconds: dict[tuple[str, int], float], model: str) -> np.ndarray | None:
    """(slope, intercept) of a least-squares line of ``model``'s seconds in depth; None
    with fewer than two timed depths."""
    timed = sorted((d, s) for (m, d), s in seconds.items() if m == model)
    if len(timed) < 2:
        return None
    depths, secs = zip(*timed, strict=True)
    return np.polyfit(depths, secs, 1)


def price(seconds: dict[tuple[str, int], float], model: str, depth: int) -> float | None:
    """A job's seconds from one machine's medians: its own (model, depth), else the model's
    line in depth; None where neither gives a positive time."""
    if (model, depth) in seconds:
        return seconds[(model, depth)]
    line = depth_line(seconds, model)
    guess = float(np.polyval(line, depth)) if line is not None else 0.0
    return guess if guess > 0 else None


def round_cost(jobs: Sequence[tuple[str, int]], summary: pd.DataFrame) -> Cost:
    """The cost of ``jobs``, (model, depth) per planned job, at ``summary``'s job times."""
    machine = latest_machine(summary) if "machine" in summary else None
    if machine is None:
        return Cost(0.0, len(jobs), 0, len(jobs), None)
    here = job_seconds(summary, machine)
    others = [(m, job_seconds(summary, m)) for m in other_machines(summary, machine)]
    total, extrapolated, unpriced, elsewhere = 0.0, 0, 0, Counter[str]()
    for model, depth in jobs:
        seconds = price(here, model, int(depth))
        if seconds is not None:
            total += seconds
            extrapolated += (model, int(depth)) not in here
            continue
        for other, times in others:
            seconds = price(times, model, int(depth))
            if seconds is not None:
                total += seconds
                elsewhere[other] += 1
                break
        else:
            unpriced += 1
    return Cost(total, len(jobs), extrapolated, unpriced, machine, tuple(elsewhere.items()))


def planned_jobs(plans: Sequence[Any]) -> list[tuple[str, int]]:
    """(model, depth) of each job that seeded cell plans (``resolve.CellPlan``) launch."""
    return [(model, plan.depth) for plan in plans for model in plan.models]
