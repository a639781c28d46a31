"""What a round of ``resolve`` costs before it runs, from the sweep's own job times.

A planned job (model, depth) is priced at the median ``total_seconds`` of the sweep's
completed jobs of that model and depth, by the rules the ETA and ``make bench`` share
(``vitbn_sweep.epoch_times``): on the machine of the job that ended last, a depth not
timed there read off the model's line in depth (and said so); a model that machine cannot
price (fewer than two timed depths there: a sweep just moved to a new chip) at another
machine of the same device that can, the one with the most completed jobs first, and said
so with that machine's name: measured elsewhere, not guessed, but its speed may differ. A
CPU job is never priced at a GPU's times, nor the reverse; a job no machine of its device
timed a depth of stays unpriced. The sum is job time, each job as long as it took in this
sweep (with the jobs that ran beside it then); jobs run side by side finish sooner.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from vitbn_sweep.epoch_times import estimate, machine_order
from vitbn_sweep.store.status import duration


@dataclass(frozen=True)
class Cost:
    """Job seconds of the priced jobs, on ``machine``; ``extrapolated``: jobs priced by the
    line in depth; ``unpriced``: jobs of a model no machine of its device timed;
    ``elsewhere``: (machine, jobs) priced at another machine's times."""

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
            text += f"; {self.unpriced} job(s) not priced: no machine of this device timed "
            text += "their model"
        return text


def job_seconds(summary: pd.DataFrame, machine: str | None) -> dict[str, dict[int, float]]:
    """Median ``total_seconds`` per model and depth of the completed jobs on ``machine``."""
    done = summary[(summary["machine"] == machine) & summary["total_seconds"].notna()]
    medians = done.groupby(["model", "depth"])["total_seconds"].median()
    out: dict[str, dict[int, float]] = {}
    for (model, depth), seconds in medians.items():
        out.setdefault(str(model), {})[int(depth)] = float(seconds)
    return out


def round_cost(jobs: Sequence[tuple[str, int]], summary: pd.DataFrame) -> Cost:
    """The cost of ``jobs``, (model, depth) per planned job, at ``summary``'s job times."""
    if "machine" not in summary:
        return Cost(0.0, len(jobs), 0, len(jobs), None)
    done = summary[(summary["status"] == "completed") & summary["machine"].notna()]
    machines = machine_order(zip(done["machine"], done["ended_at"], strict=True))
    if not machines:
        return Cost(0.0, len(jobs), 0, len(jobs), None)
    times = [job_seconds(done, m) for m in machines]
    total, extrapolated, unpriced, elsewhere = 0.0, 0, 0, Counter[str]()
    for model, depth in jobs:
        found = estimate([t.get(model, {}) for t in times], int(depth))
        if found is None:
            unpriced += 1
            continue
        source, seconds = found
        total += seconds
        if source:
            elsewhere[str(machines[source])] += 1
        else:
            extrapolated += int(depth) not in times[0].get(model, {})
    return Cost(total, len(jobs), extrapolated, unpriced, machines[0], tuple(elsewhere.items()))


def planned_jobs(plans: Sequence[Any]) -> list[tuple[str, int]]:
    """(model, depth) of each job that seeded cell plans (``resolve.CellPlan``) launch."""
    return [(model, plan.depth) for plan in plans for model in plan.models]
