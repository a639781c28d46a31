"""Adaptive seeds: one more seed at exactly the cells whose outcome can still move a critical
depth, round after round, until every such cell is settled or has ``max_seeds`` seeds.

A cell's state is the report's (``analysis.compare``: win, lose, unresolved, no data); the
plan adds when to *stop* seeding it. Looking at a cell after every seed and stopping at its
first win or lose would test it up to ``max_seeds - 1`` times, and a difference just below
the margin would often be called a win at 2-3 seeds and never looked at again. So a win or
a lose is only *settled* when its interval at the stricter ``stop_level`` lies wholly above
(win) or below (lose) the margin; until then it is *provisional* and gets seeds, like an
unresolved cell, while it matters. The default ``stop_level`` is a Bonferroni split of the
report's error over a cell's early looks (at 2 .. max_seeds - 1 seeds), so that its early
stops together err about as rarely as one test at ``--level``; at ``max_seeds`` the report's
rule decides, as it would for a sweep run with ``max_seeds`` seeds everywhere. With
``min_seeds`` no cell settles on fewer seeds: seeds that fall into a rare slow mode (as
some of this study's cells do) can all miss it, and a t interval on a few seeds then looks
tight around the wrong mean; ``studies.simulate --slow-mode`` (``make simulate``) measures
what that costs.

A cell matters when its outcome can still change its condition's critical depth: an
unresolved, empty or provisionally won cell above the largest lost depth, and that lost
depth itself while its lose is provisional. Cells below it get nothing while it stands (if
it turns, the next round seeds them). Seeds are added in pairs, the same seed for both
models, so the cell stays paired. Jobs go through the project's own CLI
(``python -m vitbn_sweep -m``), with the user's overrides and launcher (read from the
sweep's ``multirun.yaml``), into the same sweep directory: completed and diverged jobs are
never rerun; a failed job is run again, once per ``resolve``, and said so in the plan (a
failed seed leaves its cell unpaired; the sweeper reruns a failed job that is launched
again, ``resume.rerun_failed``).

With ``gap`` the rounds also seed every depth whose lr gap is not settled: the study's third
question, does the higher learning rate hurt the baseline more than the candidate, depth by
depth? Each depth's gap (``analysis.stability``: the baseline's loss from the low to the
high lr minus the candidate's) is answered on the seeds that both models ran at both rates.
A seed for a gap is therefore four jobs, the same seed for both models at both rates; where
some of the four already ran it (the critical-depth plan seeds each lr on its own), only
the missing ones run. Every depth's gap is an answer of its own, so every unsettled gap gets
seeds, up to ``max_seeds``. Settled, as for cells, means at the stricter stop level and on
at least ``min_seeds`` seeds: a side *loses more* once that interval excludes 0, and the gap
is *within the margin* once it lies inside (-margin, +margin). The margin is what makes a
null answer reachable: without it a true gap near 0 (the study's shallow depths) would take
seeds until ``max_seeds`` and still say nothing. ``studies.simulate_gap`` (``make simulate
GAP=1``) measures the rule's jobs and wrong answers against ``max_seeds`` seeds everywhere.

Cells and gaps share one planner: one reading of the seeds each job has (``taken_seeds``),
one next-seed rule and capped check (``next_seed``, which plans a gap's seed as the cells it
launches), one stop interval (``with_stop_intervals``), the same provisional wording, one
command builder (``commands``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import render
from analysis.compare import (
    LOSE,
    NO_DATA,
    UNRESOLVED,
    WIN,
    Analysis,
    analyze,
    depth_differences,
    verdict,
)
from analysis.cost import planned_jobs, round_cost
from analysis.frames import config_key, groups, missing
from analysis.load import SweepInfo, load_results, sweep_info
from analysis.records import AnalysisError
from analysis.settings import Settings
from analysis.spread import WIDE_MIN_SEEDS, wide_cells
from analysis.stability import GAP_ANSWERS, gap_state, stability_gap
from vitbn_sweep.schema import override_key
from vitbn_sweep.store.origin import origin_doc, pin_origin

SEED, CAPPED, NO_EFFECT = "seed", "capped", "cannot change the answer"
RERUN = "rerun"  # a failed job, launched again
MAX_SEEDS, MIN_SEEDS = 6, 2  # resolve's defaults: seeds per model and cell, fewest to settle on
LAUNCHES = (SEED, RERUN)
CELL_KEYS = ("model", "model.depth", "trainer.seed")  # set per launch, whatever the user gave
PLACE_KEYS = ("sweep_name", "paths.outputs", "hydra.sweep.dir")
Condition = tuple[tuple[str, Any], ...]  # (frame column, value) pairs
Taken = dict[tuple[Condition, int, str], set[int]]  # (condition, depth, model): its seeds


@dataclass(frozen=True)
class CellPlan:
    """What one round does with one cell that matters or is undecided.

    ``state`` is the report's; ``why`` says why the cell is not settled (for a provisional
    win or lose: its interval at the stop level still reaches the margin).
    """

    condition: Condition
    depth: int
    state: str
    action: str  # SEED, RERUN, CAPPED or NO_EFFECT
    why: str
    seed: int | None = None
    models: tuple[str, ...] = ()


def default_stop_level(level: float, max_seeds: int) -> float:
    """The report's error ``1 - level`` split evenly (Bonferroni) over the early looks a cell
    can get, at 2 .. ``max_seeds`` - 1 seeds: 0.9875 for 0.95 and 6 seeds."""
    return 1 - (1 - level) / max(max_seeds - 2, 1)


def settled(
    state: str, stop_low: float, stop_high: float, margin: float, short: bool = False
) -> bool:
    """Whether a cell needs no more seeds, whatever else happens: a win whose interval at the
    stop level lies above the margin, or a lose whose interval lies below it; never while it
    is ``short`` of the minimum seeds."""
    if short:
        return False
    if state == WIN:
        return bool(stop_low > margin)
    return state == LOSE and bool(stop_high < margin)


def deciding_depths(
    depths: Sequence[int], states: Sequence[str], settles: Sequence[bool]
) -> tuple[int, ...]:
    """The depths (ascending) whose outcome can still move the critical depth.

    ``states``: the cells' states, depths ascending; ``settles``: which are ``settled``.
    Provisional wins count as unresolved (they may still lose), so every open cell above the
    largest lost depth matters, as in ``compare.verdict``; that lost depth matters too while
    its lose is provisional, and cells below it only once it has turned.
    """
    planning = [
        UNRESOLVED if state == WIN and not ok else state
        for state, ok in zip(states, settles, strict=True)
    ]
    out = set(verdict(depths, planning).open_depths)
    lost = [i for i, state in enumerate(states) if state == LOSE]
    if lost and not settles[lost[-1]]:
        out.add(depths[lost[-1]])
    return tuple(sorted(out))


def condition_of(row: dict[str, Any], conditions: Sequence[str]) -> Condition:
    """A row's condition as hashable (column, value) pairs; a missing value is None."""
    return tuple((c, None if missing(row[c]) else row[c]) for c in conditions)


def taken_seeds(jobs: pd.DataFrame, conditions: Sequence[str]) -> Taken:
    """The seeds each (condition, depth, model) has, one row of ``jobs`` per ended job
    whatever its status: a failed seed counts as taken (``failed_jobs`` reruns it)."""
    taken: Taken = {}
    for job in jobs.dropna(subset=["depth", "seed"]).to_dict("records"):
        key = (condition_of(job, conditions), int(job["depth"]), job["model"])
        taken.setdefault(key, set()).add(int(job["seed"]))
    return taken


def percent(level: float) -> str:
    return f"{level * 100:.4g} %"


def _seeds(cell: dict[str, Any]) -> int:
    """A cell's seeds: the fewer of its two models'."""
    return int(min(cell["n_a"], cell["n_b"]))


def next_seed(
    jobs: Sequence[tuple[Condition, str]],
    depth: int,
    taken: Taken,
    max_seeds: int,
    state: str,
    why: str,
) -> tuple[CellPlan, ...]:
    """The next seed of a cell or gap, whose ``jobs`` are (condition, model) at ``depth``
    (a cell: both models; a gap: both models at both rates), as SEED plans, one per
    condition with the models that lack it; none (capped) once each job has ``max_seeds``.

    The seed is the smallest that not all jobs have, so the cell stays paired, and the
    critical-depth plan and the gap plan pick the same seed where they seed one cell.
    """
    seeds = {job: taken.get((job[0], depth, job[1]), set()) for job in jobs}
    if min(len(s) for s in seeds.values()) >= max_seeds:
        return ()
    every = set.intersection(*seeds.values())
    seed = min(s for s in range(len(every) + 1) if s not in every)
    lacking: dict[Condition, list[str]] = {}
    for (condition, model), have in seeds.items():
        if seed not in have:
            lacking.setdefault(condition, []).append(model)
    return tuple(
        CellPlan(condition, depth, state, SEED, why, seed, tuple(sorted(models)))
        for condition, models in lacking.items()
    )


def _short(state: str, seeds: int, min_seeds: int, what: str) -> str:
    return (
        f"provisional {state}: {seeds} seeds, fewer than the {min_seeds} a {what} needs to "
        "settle (--min-seeds)"
    )


def _why(cell: dict[str, Any], margin: float, stop_level: float, min_seeds: int) -> str:
    """Why a cell is not settled: its state and note, its seeds below ``min_seeds``, or its
    stop-level interval."""
    if cell["state"] not in (WIN, LOSE):
        return f"{cell['state']}: {cell['note']}" if cell["note"] else cell["state"]
    if _seeds(cell) < min_seeds:
        return _short(cell["state"], _seeds(cell), min_seeds, "cell")
    interval = f"{render.pct(cell['stop_low'])} to {render.pct(cell['stop_high'])} points"
    side = "below" if cell["state"] == WIN else "above"
    return (
        f"provisional {cell['state']}: its {percent(stop_level)} interval ({interval}) still "
        f"reaches {side} the margin ({render.in_points(margin)})"
    )


def plan_seeds(
    cells: pd.DataFrame,
    jobs: pd.DataFrame,
    conditions: Sequence[str],
    max_seeds: int,
    margin: float,
    stop_level: float,
    min_seeds: int = 2,
) -> list[CellPlan]:
    """The plan of one round: every cell that matters and is not settled (seed or capped),
    and every other unresolved or empty cell (no effect). A cell with fewer than
    ``min_seeds`` seeds (per model) is never settled.

    ``cells``: ``compare.depth_differences`` rows plus ``stop_low``/``stop_high``, their
    interval at ``stop_level``. ``jobs``: one row per ended job (conditions, model, depth,
    seed), as ``taken_seeds`` reads them. A cell's next seed is ``next_seed`` of its two
    models.
    """
    taken = taken_seeds(jobs, conditions)
    plans = []
    for _, group in groups(cells, list(conditions)):
        group = group.sort_values("depth")
        rows = group.to_dict("records")
        condition = condition_of(rows[0], conditions)
        pair = (rows[0]["candidate"], rows[0]["baseline"])
        depths = [int(c["depth"]) for c in rows]
        states = [c["state"] for c in rows]
        settles = [
            settled(c["state"], c["stop_low"], c["stop_high"], margin, _seeds(c) < min_seeds)
            for c in rows
        ]
        matter = set(deciding_depths(depths, states, settles))
        for cell, depth in zip(rows, depths, strict=True):
            if depth not in matter and cell["state"] not in (UNRESOLVED, NO_DATA):
                continue  # settled, or a provisional win or lose below a lost depth
            why = _why(cell, margin, stop_level, min_seeds)
            if depth not in matter:
                plans.append(CellPlan(condition, depth, cell["state"], NO_EFFECT, why))
                continue
            both = [(condition, model) for model in pair]
            seeded = next_seed(both, depth, taken, max_seeds, cell["state"], why)
            capped = CellPlan(condition, depth, cell["state"], CAPPED, why)
            plans.append(seeded[0] if seeded else capped)  # a cell seeds one condition
    return plans


def with_stop_intervals(
    rows: pd.DataFrame,
    scores: pd.DataFrame,
    pair: tuple[str, str],
    settings: Settings,
    stop_level: float,
    table: Callable[[pd.DataFrame, tuple[str, str], Settings], pd.DataFrame] = depth_differences,
) -> pd.DataFrame:
    """``rows`` (``table`` of ``scores``: the cells of ``compare.depth_differences``, or the
    gaps of ``stability.stability_gap``) with ``stop_low`` and ``stop_high``: each row's
    interval at ``stop_level``, from the same table at that level (so in the same order)."""
    stop = table(scores, pair, replace(settings, level=stop_level))
    return rows.assign(
        stop_low=stop["ci_low"].to_numpy(float), stop_high=stop["ci_high"].to_numpy(float)
    )


def _stop_level(a: Analysis, max_seeds: int, stop_level: float | None) -> float:
    """The stop level a round plans with: ``stop_level``, else ``default_stop_level``."""
    return default_stop_level(a.settings.level, max_seeds) if stop_level is None else stop_level


def plan_round(
    a: Analysis, max_seeds: int, stop_level: float | None = None, min_seeds: int = 2
) -> list[CellPlan]:
    """``plan_seeds`` on an ``Analysis`` (its non-duplicate jobs); ``stop_level`` defaults to
    ``default_stop_level``."""
    if a.pair is None or a.diffs.empty:
        return []
    level = _stop_level(a, max_seeds, stop_level)
    cells = with_stop_intervals(a.diffs, a.scores, a.pair, a.settings, level)
    return plan_seeds(cells, a.jobs, a.conditions, max_seeds, a.settings.margin, level, min_seeds)


# --- lr gaps (--gap) ---------------------------------------------------------------------


@dataclass(frozen=True)
class GapPlan:
    """What one round does with one unsettled gap: ``cells`` seed it, one per lr that lacks
    ``seed`` (with the models that lack it there); ``condition`` holds the other conditions
    (all but lr)."""

    condition: Condition
    depth: int
    lr_low: float
    lr_high: float
    state: str
    action: str  # SEED or CAPPED
    why: str
    seed: int | None = None
    cells: tuple[CellPlan, ...] = ()


def gap_settled(stop_low: float, stop_high: float, margin: float, short: bool) -> bool:
    """Whether a gap needs no more seeds: its state on its interval at the stop level
    (``stability.gap_state``) is answered, a side loses more or it is within the margin;
    never while it is ``short`` of seeds. The stop interval holds the report's, so the
    report's state then agrees."""
    if short:
        return False
    return gap_state(1, 1, stop_low, stop_high, margin) in GAP_ANSWERS


def _gap_why(
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
        return _short(state, n, min_seeds, "gap")
    else:
        name, at, low, high = f"provisional {state}", stop_level, gap["stop_low"], gap["stop_high"]
    return (
        f"{name}: {render.points(gap['gap'])} points, its {percent(at)} interval "
        f"({render.points(low)} to {render.points(high)}) reaches 0 and past the "
        f"±{margin * 100:g}-point margin"
    )


def plan_gap_seeds(
    gaps: pd.DataFrame,
    jobs: pd.DataFrame,
    conditions: Sequence[str],
    max_seeds: int,
    margin: float,
    level: float,
    stop_level: float,
    min_seeds: int = 2,
) -> list[GapPlan]:
    """The gap plan of one round: every gap not settled gets its next seed (or is capped).

    ``gaps``: ``stability_gap`` rows plus ``stop_low``/``stop_high`` (at ``stop_level``);
    ``jobs``: one row per ended job (``conditions``, lr among them, model, depth, seed). A
    gap's next seed is ``next_seed`` of its four (model, lr) jobs.
    """
    others = [c for c in conditions if c != "lr"]
    taken = taken_seeds(jobs, conditions)
    plans = []
    for _, group in groups(gaps, others):
        for gap in group.sort_values(["lr_high", "depth"]).to_dict("records"):
            if gap_settled(gap["stop_low"], gap["stop_high"], margin, gap["n"] < min_seeds):
                continue
            condition, depth = condition_of(gap, others), int(gap["depth"])
            rates = (gap["lr_low"], gap["lr_high"])
            four = [
                (condition_of({**gap, "lr": lr}, conditions), model)
                for lr in rates
                for model in (gap["candidate"], gap["baseline"])
            ]
            why = _gap_why(gap, margin, level, stop_level, min_seeds)
            cells = next_seed(four, depth, taken, max_seeds, gap["state"], why)
            action, seed = (SEED, cells[0].seed) if cells else (CAPPED, None)
            plans.append(GapPlan(condition, depth, *rates, gap["state"], action, why, seed, cells))
    return plans


def plan_gap_round(
    a: Analysis, max_seeds: int, stop_level: float | None = None, min_seeds: int = 2
) -> list[GapPlan]:
    """``plan_gap_seeds`` on an ``Analysis`` (its non-duplicate jobs); ``stop_level``
    defaults to ``default_stop_level``."""
    if a.pair is None or a.stability_gap.empty:
        return []
    level = _stop_level(a, max_seeds, stop_level)
    gaps = with_stop_intervals(
        a.stability_gap, a.scores, a.pair, a.settings, level, table=stability_gap
    )
    margin, report = a.settings.margin, a.settings.level
    return plan_gap_seeds(gaps, a.jobs, a.conditions, max_seeds, margin, report, level, min_seeds)


def merge(plans: Sequence[CellPlan]) -> list[CellPlan]:
    """The launching plans (seeds, reruns), one per (condition, depth, seed), models united;
    the first one's state and why. Where the critical-depth plan and a gap seed a cell they
    pick the same seed: the smallest one that cell lacks."""
    merged: dict[tuple, CellPlan] = {}
    for plan in plans:
        if plan.action not in LAUNCHES:
            continue
        key = (plan.condition, plan.depth, plan.seed)
        if key in merged:
            models = tuple(sorted({*merged[key].models, *plan.models}))
            plan = replace(merged[key], models=models)
        merged[key] = plan
    return list(merged.values())


# --- failed jobs ------------------------------------------------------------------------


def failed_jobs(a: Analysis, skip: Sequence[tuple] = ()) -> tuple[list[CellPlan], list[tuple]]:
    """The failed jobs of the pair's models as RERUN plans, one per (condition, depth, seed)
    with its models (``merge``) and its first job's error, but those keyed in ``skip`` (run
    again by this ``resolve`` already); and every failed job's key (condition, depth, seed,
    model)."""
    if a.pair is None:
        return [], []
    failed = a.jobs[(a.jobs["status"] == "failed") & a.jobs["model"].isin(a.pair)]
    failed = failed.dropna(subset=["depth", "seed"])  # no config: no command to rerun it by
    plans, keys = [], []
    for job in failed.sort_values(["depth", "seed", "model"]).to_dict("records"):
        depth, seed, model = int(job["depth"]), int(job["seed"]), str(job["model"])
        condition = condition_of(job, a.conditions)
        keys.append((condition, depth, seed, model))
        if keys[-1] not in skip:
            error = "" if missing(job["error"]) else str(job["error"])
            plans.append(CellPlan(condition, depth, "failed", RERUN, error, seed, (model,)))
    return merge(plans), keys


def describe_reruns(plans: Sequence[CellPlan], again: int) -> list[str]:
    """The failed jobs the round runs again, and how many failed again after this resolve's
    rerun (not run a third time)."""
    lines = []
    if plans:
        jobs = sum(len(p.models) for p in plans)
        lines.append(
            f"  {jobs} failed job(s), run again in this round (a failed seed leaves its cell "
            "unpaired):"
        )
        for plan in plans:
            where = f"{render.condition_text(plan.condition)}, depth {plan.depth}"
            error = f" (it failed: {plan.why})" if plan.why else ""
            lines.append(f"    {where}: seed {plan.seed} for {', '.join(plan.models)}{error}")
    if again:
        lines.append(
            f"  {again} job(s) failed again after this resolve ran them again: left failed "
            "(their result.json says why); their cells take the next seed"
        )
    return lines


# --- commands ----------------------------------------------------------------------------


def _value(value: Any) -> str:
    """A Python (or numpy) value as a Hydra override value."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, bool):
        return str(value).lower()
    if missing(value):
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    return text if re.fullmatch(r"[\w./-]+", text) else "'" + text.replace("'", "\\'") + "'"


def _place(sweep: SweepInfo) -> list[str]:
    """Overrides that put the jobs in ``sweep.path``, under the user's sweep name."""
    sweep_dir = Path(sweep.path).resolve()
    place = [f"hydra.sweep.dir={_value(sweep_dir.as_posix())}"]
    name = sweep.config.get("sweep_name")
    if isinstance(name, str) and "${" not in name and sweep_dir.as_posix().endswith(f"/{name}"):
        outputs = sweep_dir.as_posix()[: -len(name) - 1] or "/"
        place += [f"sweep_name={_value(name)}", f"paths.outputs={_value(outputs)}"]
    return place


def commands(
    plans: Sequence[CellPlan],
    sweep: SweepInfo,
    varying: set[str],
    extra: Sequence[str] = (),
) -> list[list[str]]:
    """One ``python -m vitbn_sweep -m`` argv per (condition, seed, models) group of cells to
    seed or rerun, lowest seed first: the cells furthest behind (and the jobs a cut round
    left) come first, so a round cut short has brought the most cells up by a seed.

    The user's overrides stay, bar the cell's own keys (model, depth, seed and those
    condition keys that the command sets or the loaded jobs vary); the launcher and its
    settings are the user's (``hydra.*`` overrides); jobs land in ``sweep.path``.
    ``extra`` overrides come last, so they win.
    """
    groups: dict[tuple, list[int]] = {}
    for plan in plans:
        if plan.action in LAUNCHES:
            groups.setdefault((plan.condition, plan.seed, plan.models), []).append(plan.depth)
    given = {override_key(o) for o in sweep.task} | set(sweep.params)
    hydra = [o for o in sweep.hydra_overrides if override_key(o) not in PLACE_KEYS]
    out = []
    for (condition, seed, models), depths in sorted(groups.items(), key=lambda g: g[0][1]):
        fixed = {config_key(c): v for c, v in condition if c in varying or config_key(c) in given}
        cell = [f"{k}={_value(v)}" for k, v in fixed.items()]
        cell += [f"model={','.join(models)}", f"model.depth={','.join(map(str, sorted(depths)))}"]
        cell.append(f"trainer.seed={seed}")
        drop = {*fixed, *CELL_KEYS, *PLACE_KEYS}
        task = [o for o in sweep.task if override_key(o) not in drop]
        argv = [sys.executable, "-m", "vitbn_sweep", "-m", *task, *cell, *_place(sweep)]
        out.append([*argv, *hydra, *extra])
    return out


# --- the loop ----------------------------------------------------------------------------


def describe_round(a: Analysis, plans: Sequence[CellPlan]) -> list[str]:
    """Per condition: the critical depth so far, then each cell in the plan and what it gets."""
    lines = []
    for row in a.critical.to_dict("records"):
        condition = condition_of(row, a.conditions)
        lines.append(
            f"  {render.condition_text(condition)}: critical depth {row['critical_depth']} "
            f"({row['verdict']}; seeds {row['seeds']})"
        )
        for plan in sorted((p for p in plans if p.condition == condition), key=lambda p: p.depth):
            if plan.action == SEED:
                todo = f"seed {plan.seed} for {', '.join(plan.models)}"
            elif plan.action == CAPPED and plan.state in (WIN, LOSE):
                todo = f"no seed: it has max_seeds already, and stays a {plan.state}"
            elif plan.action == CAPPED:
                todo = "no seed: it has max_seeds already"
            else:
                todo = "no seed: it cannot change the critical depth (a larger depth loses)"
            lines.append(f"    depth {plan.depth}: {plan.why} -> {todo}")
    return lines


def describe_gaps(a: Analysis, plans: Sequence[GapPlan]) -> list[str]:
    """Per other condition and lr step: each unsettled gap and what it gets."""
    if a.pair is None:
        return []
    candidate, baseline = a.pair
    lines = []
    for plan in plans:
        step = f"lr {plan.lr_low:g} -> {plan.lr_high:g}"
        where = f"{render.condition_text(plan.condition)}, {step}" if plan.condition else step
        if plan.action == SEED:
            todo = f"seed {plan.seed} for " + "; ".join(
                f"lr {dict(cell.condition)['lr']:g}: {', '.join(cell.models)}"
                for cell in plan.cells
            )
        else:
            todo = "no seed: it has max_seeds already"
        lines.append(f"    {where}, depth {plan.depth}: {plan.why} -> {todo}")
    if lines:
        head = f"  does the higher lr hurt {baseline} more than {candidate}? (--gap)"
        lines.insert(0, head)
    return lines


def _done(plans: Sequence[CellPlan], gaps: Sequence[GapPlan] = (), failed: int = 0) -> str:
    capped = [p for p in plans if p.action == CAPPED]
    if any(p.state in (UNRESOLVED, NO_DATA) for p in capped):
        text = "cells left unresolved at max_seeds"
    elif capped:
        text = "resolved (provisional cells at max_seeds decided by the report's rule)"
    else:
        text = "resolved"
    if gaps:  # every gap left is capped: no gap is planned once settled
        text += f"; {len(gaps)} lr gap(s) not settled at max_seeds (the report's rule decides)"
    if failed:
        text += f"; {failed} job(s) failed again when run again"
    return text


def _analyze(sweep_dir: Path, settings: Settings) -> Analysis:
    records, stats, sweeps = load_results("files", [str(sweep_dir)])
    return analyze(records, stats, settings, sweeps)


def resolve(
    sweep_dir: str | Path,
    settings: Settings,
    *,
    max_seeds: int = MAX_SEEDS,
    max_rounds: int | None = None,
    dry_run: bool = False,
    extra: Sequence[str] = (),
    stop_level: float | None = None,
    min_seeds: int = MIN_SEEDS,
    gap: bool = False,
    run: Callable[..., Any] = subprocess.run,
    echo: Callable[[str], None] = print,
) -> int:
    """Rounds of seeds until no cell that matters (with ``gap``: and no lr gap) is unsettled;
    the exit code (0; 1: stuck).

    ``stop_level``: of the interval that settles a win or lose (default:
    ``default_stop_level``); ``min_seeds``: no win or lose settles on fewer seeds per model
    (2 .. ``max_seeds``); ``gap``: also seed the lr gaps not settled (does the higher lr hurt
    the baseline more?). Failed jobs are run again, each once per call. ``run`` launches
    one argv (``subprocess.run``'s signature and result); ``dry_run`` prints the first
    round's plan and commands and launches nothing.
    """
    if max_seeds < 2:
        raise AnalysisError("max_seeds must be >= 2: one seed gives no interval")
    if not 2 <= min_seeds <= max_seeds:
        raise AnalysisError(
            f"min_seeds must be in [2, max_seeds={max_seeds}] (got {min_seeds}): it is the "
            "fewest seeds a win or lose may settle on"
        )
    if stop_level is None:
        stop_level = default_stop_level(settings.level, max_seeds)
    if not 0 < stop_level < 1:
        raise AnalysisError("stop_level must be in (0, 1)")
    sweep_dir = Path(sweep_dir)
    sweep = sweep_info(sweep_dir)
    if sweep is None:
        raise AnalysisError(f"{sweep_dir}: no multirun.yaml, so no command to add seeds with")
    origin = origin_doc(sweep_dir)
    cwd = sweep.cwd if sweep.cwd and Path(sweep.cwd).is_dir() else os.getcwd()
    ended = None  # the jobs of the sweep when the last round launched new seeds
    rerun: list[tuple] = []  # the failed jobs run again so far
    for round_ in range(1, (max_rounds or sys.maxsize) + 1):
        a = _analyze(sweep_dir, settings)
        if ended is not None and len(a.summary) == ended:
            echo("resolve: error: the last round launched jobs but no new result appeared")
            return 1
        plans = plan_round(a, max_seeds, stop_level, min_seeds)
        gaps = plan_gap_round(a, max_seeds, stop_level, min_seeds) if gap else []
        reruns, failed = failed_jobs(a, skip=rerun)
        again = len(set(failed) & set(rerun))
        seeded = merge([*reruns, *plans, *(cell for plan in gaps for cell in plan.cells)])
        echo(f"resolve round {round_}: {sweep_dir} (launcher: {sweep.launcher or 'default'})")
        if round_ == 1 and min_seeds < WIDE_MIN_SEEDS:
            wide = wide_cells(a.spread, a.conditions)
            if wide:
                echo(
                    f"resolve: warning: seeds are wide at {'; '.join(wide)} (see the report's "
                    "Seed spread): a few seeds can all miss a slow run there, and a cell may "
                    f"settle on {min_seeds}; --min-seeds {WIDE_MIN_SEEDS} "
                    f"(make resolve MIN_SEEDS={WIDE_MIN_SEEDS}) settles none on fewer"
                )
        if round_ == 1:
            least = f", on at least {min_seeds} seeds" if min_seeds > 2 else ""
            echo(
                f"  a win or lose is settled once its {percent(stop_level)} interval clears the "
                f"margin{least}; until then it is provisional and gets seeds while it matters"
            )
            if gap:
                echo(
                    f"  (--gap) an lr gap is settled once its {percent(stop_level)} interval "
                    f"excludes 0 or lies within ±{render.in_points(settings.margin)} (the margin)"
                    f"{least}; until then it gets seeds, the same for both models at both lrs"
                )
        lines = describe_reruns(reruns, again) + describe_round(a, plans) + describe_gaps(a, gaps)
        echo("\n".join(lines) or "  no model pair to compare: nothing to do")
        if not seeded:
            echo("done: " + _done(plans, gaps, again))
            return 0
        new = any(p.action == SEED for p in [*plans, *gaps])
        ended = len(a.summary) if new else None
        rerun += [key for key in failed if key not in rerun]
        varying = {c for c in a.conditions if a.summary[c].nunique(dropna=False) > 1}
        argvs = commands(seeded, sweep, varying, extra)
        jobs = planned_jobs(seeded)  # merged: a job asked twice runs once
        cost = round_cost(jobs, a.jobs).text()
        echo(f"  {len(jobs)} job(s) in {len(argvs)} command(s), {cost}:")
        echo("\n".join("    python " + shlex.join(argv[1:]) for argv in argvs))
        if dry_run:
            return 0
        try:
            for argv in argvs:
                if origin is not None:  # before it rewrites multirun.yaml: also if killed
                    pin_origin(sweep_dir, origin, launching=argv[4:])
                code = run(argv, cwd=cwd).returncode
                if code == 2:  # an invalid config: the sweeper launched nothing
                    echo("resolve: error: the sweep command was refused (exit code 2)")
                    return 1
                if code:
                    echo(f"resolve: warning: the sweep command exited {code} (failed jobs?)")
        finally:
            if origin is not None:
                pin_origin(sweep_dir, origin)  # multirun.yaml is now ours; keep the user's
    echo(f"stopped after {max_rounds} round(s)")
    return 0
