"""Adaptive seeds for the study's third question, ``resolve --gap``: does the higher learning
rate hurt the baseline more than the candidate, depth by depth?

Each depth's gap (``analysis.stability``: the baseline's loss from the low to the high lr
minus the candidate's) is answered on the seeds that both models ran at both rates. A seed
for a gap is therefore four jobs, the same seed for both models at both rates; where some
of the four already ran it (the critical-depth plan seeds each lr on its own), only the
missing ones run.

Every depth's gap is an answer of its own, so every unsettled gap gets seeds, up to
``max_seeds``. Settled, as for ``resolve``'s cells, means at the stricter stop level and on
at least ``min_seeds`` seeds: a side *loses more* once that interval excludes 0, and the gap
is *within the margin* once it lies inside (-margin, +margin). The margin is what makes a
null answer reachable: without it a true gap near 0 (the study's shallow depths) would take
seeds until ``max_seeds`` and still say nothing. ``python -m analysis.simulate_gap``
measures the rule's jobs and wrong answers against ``max_seeds`` seeds everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from analysis.compare import Analysis
from analysis.frames import groups
from analysis.render import points
from analysis.resolve import (
    CAPPED,
    SEED,
    CellPlan,
    condition_of,
    default_stop_level,
    label,
    matching,
    percent,
)
from analysis.stability import (
    UNRESOLVED,
    stability_gap,
)


@dataclass(frozen=True)
class GapPlan:
    """What one round does with one unsettled gap: ``jobs`` are the (lr, models) that lack
    ``seed``; ``condition`` holds the other conditions (all but lr)."""

    condition: tuple[tuple[str, Any], ...]
    depth: int
    lr_low: float
    lr_high: float
    state: str
    action: str  # SEED or CAPPED
    why: str
    seed: int | None = None
    jobs: tuple[tuple[float, tuple[str, ...]], ...] = ()


def gap_settled(stop_low: float, stop_high: float, margin: float, short: bool) -> bool:
    """Whether a gap needs no more seeds: its interval at the stop level excludes 0 (a side
    loses more) or lies within (-``margin``, +``margin``); never while it is ``short`` of
    seeds. The stop interval holds the report's, so the report's state then agrees."""
    if short:
        return False
    return bool(stop_low > 0 or stop_high < 0 or (-margin < stop_low and stop_high < margin))


def _why(
    gap: dict[str, Any], margin: float, level: float, stop_level: float, min_seeds: int
) -> str:
    """Why a gap is not settled: no interval yet, too few seeds, or its interval (the
    report's while unresolved, else the stop level's) reaches 0 and past the margin."""
    state, n = gap["state"], int(gap["n"])
    if pd.isna(gap["ci_low"]):
        return f"{state}: {n} seed(s) at both rates, no interval yet"
    if state == UNRESOLVED:
        name, at, low, high = state, level, gap["ci_low"], gap["ci_high"]
    elif n < min_seeds:
        return (
            f"provisional {state}: {n} seeds, fewer than the {min_seeds} a gap needs to "
            "settle (--min-seeds)"
        )
    else:
        name, at, low, high = f"provisional {state}", stop_level, gap["stop_low"], gap["stop_high"]
    return (
        f"{name}: {points(gap['gap'])} points, its {percent(at)} interval ({points(low)} to "
        f"{points(high)}) reaches 0 and past the ±{margin * 100:g}-point margin"
    )


def plan_gap_seeds(
    gaps: pd.DataFrame,
    jobs: pd.DataFrame,
    others: Sequence[str],
    max_seeds: int,
    margin: float,
    level: float,
    stop_level: float,
    min_seeds: int = 2,
) -> list[GapPlan]:
    """The gap plan of one round: every gap not settled gets its next seed (or is capped).

    ``gaps``: ``stability_gap`` rows plus ``stop_low``/``stop_high`` (at ``stop_level``);
    ``jobs``: one row per ended job (conditions with ``lr``, model, depth, seed). A gap's
    next seed is the smallest that not all four of its (model, lr) jobs have; it goes to
    those without it. Capped: each of the four has ``max_seeds`` seeds.
    """
    plans = []
    for _, group in groups(gaps, list(others)):
        for gap in group.sort_values(["lr_high", "depth"]).to_dict("records"):
            if gap_settled(gap["stop_low"], gap["stop_high"], margin, gap["n"] < min_seeds):
                continue
            condition = condition_of(gap, others)
            here = jobs[matching(jobs, condition) & (jobs["depth"] == gap["depth"])]
            pair = (gap["candidate"], gap["baseline"])
            rates = (gap["lr_low"], gap["lr_high"])
            seeds = {
                (lr, m): set(
                    here.loc[(here["lr"] == lr) & (here["model"] == m), "seed"].astype(int)
                )
                for lr in rates
                for m in pair
            }
            base = dict(
                condition=condition,
                depth=int(gap["depth"]),
                lr_low=rates[0],
                lr_high=rates[1],
                state=gap["state"],
                why=_why(gap, margin, level, stop_level, min_seeds),
            )
            if min(len(s) for s in seeds.values()) >= max_seeds:
                plans.append(GapPlan(**base, action=CAPPED))
                continue
            every = set.intersection(*seeds.values())
            seed = min(s for s in range(len(every) + 1) if s not in every)
            todo = tuple(
                (lr, tuple(sorted(m for m in pair if seed not in seeds[(lr, m)]))) for lr in rates
            )
            plans.append(
                GapPlan(**base, action=SEED, seed=seed, jobs=tuple(t for t in todo if t[1]))
            )
    return plans


def plan_gap_round(
    a: Analysis, max_seeds: int, stop_level: float | None = None, min_seeds: int = 2
) -> list[GapPlan]:
    """``plan_gap_seeds`` on an ``Analysis`` (its non-duplicate jobs); ``stop_level``
    defaults to ``resolve.default_stop_level``."""
    if a.pair is None or a.stability_gap.empty:
        return []
    level = default_stop_level(a.settings.level, max_seeds) if stop_level is None else stop_level
    stop = stability_gap(a.scores, a.pair, replace(a.settings, level=level))
    gaps = a.stability_gap.assign(  # the same scores: the same gaps in the same order
        stop_low=stop["ci_low"].to_numpy(float), stop_high=stop["ci_high"].to_numpy(float)
    )
    others = [c for c in a.conditions if c != "lr"]
    jobs = a.summary[~a.summary["duplicate"]]
    margin = a.settings.margin
    return plan_gap_seeds(gaps, jobs, others, max_seeds, margin, a.settings.level, level, min_seeds)


def as_cell_plans(plans: Sequence[GapPlan], conditions: Sequence[str]) -> list[CellPlan]:
    """The seeded gaps as ``resolve``'s cell plans, one per lr (``conditions`` orders the
    condition's columns as the critical-depth plan does), for ``resolve.commands``."""
    out = []
    for plan in plans:
        if plan.action != SEED:
            continue
        for lr, models in plan.jobs:
            values = {**dict(plan.condition), "lr": lr}
            condition = tuple((c, values[c]) for c in conditions)
            out.append(
                CellPlan(condition, plan.depth, plan.state, SEED, plan.why, plan.seed, models)
            )
    return out


def merge(plans: Sequence[CellPlan], more: Sequence[CellPlan]) -> list[CellPlan]:
    """The seeded cells of both plans, one per (condition, depth, seed), models united.

    Where both seed a cell they pick the same seed: the smallest one that cell lacks."""
    merged: dict[tuple, CellPlan] = {}
    for plan in [*plans, *more]:
        if plan.action != SEED:
            continue
        key = (plan.condition, plan.depth, plan.seed)
        if key in merged:
            models = tuple(sorted({*merged[key].models, *plan.models}))
            plan = replace(merged[key], models=models)
        merged[key] = plan
    return list(merged.values())


def describe_gaps(a: Analysis, plans: Sequence[GapPlan]) -> list[str]:
    """Per other condition and lr step: each unsettled gap and what it gets."""
    if a.pair is None:
        return []
    candidate, baseline = a.pair
    lines = []
    for plan in plans:
        step = f"lr {plan.lr_low:g} -> {plan.lr_high:g}"
        where = f"{label(plan.condition)}, {step}" if plan.condition else step
        if plan.action == SEED:
            todo = f"seed {plan.seed} for " + "; ".join(
                f"lr {lr:g}: {', '.join(models)}" for lr, models in plan.jobs
            )
        else:
            todo = "no seed: it has max_seeds already"
        lines.append(f"    {where}, depth {plan.depth}: {plan.why} -> {todo}")
    if lines:
        head = f"  does the higher lr hurt {baseline} more than {candidate}? (--gap)"
        lines.insert(0, head)
    return lines
