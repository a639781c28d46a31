"""Adaptive seeds: one more seed at exactly the cells whose state can still move a critical
depth, round after round, until every such cell is resolved or has ``max_seeds`` seeds.

A cell matters when it is unresolved (or without data) above the largest lost depth of its
condition (``Verdict.open_depths``); cells below a lost depth cannot change the answer and
get nothing. Seeds are added in pairs, the same seed for both models, so the cell stays
paired. Jobs go through the project's own CLI (``python -m vitbn_sweep -m``), with the
user's overrides and launcher (read from the sweep's ``multirun.yaml``), into the same
sweep directory: ended jobs are never rerun, the sweeper skips them.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import render
from analysis.compare import NO_DATA, UNRESOLVED, Analysis, analyze
from analysis.frames import config_key
from analysis.load import (
    AnalysisError,
    SweepInfo,
    load_results,
    origin_doc,
    pin_origin,
    read_sweep,
)
from analysis.settings import Settings
from vitbn_sweep.identity import override_key

SEED, CAPPED, NO_EFFECT = "seed", "capped", "cannot change the answer"
CELL_KEYS = ("model", "model.depth", "trainer.seed")  # set per launch, whatever the user gave
PLACE_KEYS = ("sweep_name", "paths.outputs", "hydra.sweep.dir")


@dataclass(frozen=True)
class CellPlan:
    """What one round does with one cell that is not decided."""

    condition: tuple[tuple[str, Any], ...]  # (frame column, value) pairs
    depth: int
    action: str  # SEED, CAPPED or NO_EFFECT
    why: str
    seed: int | None = None
    models: tuple[str, ...] = ()


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def condition_of(row: dict[str, Any], conditions: Sequence[str]) -> tuple[tuple[str, Any], ...]:
    """A row's condition as hashable (column, value) pairs; a missing value is None."""
    return tuple((c, None if _missing(row[c]) else row[c]) for c in conditions)


def _matching(frame: pd.DataFrame, condition: Sequence[tuple[str, Any]]) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for column, value in condition:
        mask &= frame[column].isna() if _missing(value) else frame[column] == value
    return mask


def plan_seeds(
    diffs: pd.DataFrame,
    critical: pd.DataFrame,
    jobs: pd.DataFrame,
    conditions: Sequence[str],
    max_seeds: int,
) -> list[CellPlan]:
    """The plan of one round for every undecided cell (unresolved or without data).

    ``jobs``: one row per ended job (conditions, model, depth, seed), whatever its status:
    a failed seed is not retried here, the next seed is taken. A cell's next seed is the
    smallest one that not both models have; it goes to the model(s) without it.
    """
    plans = []
    for row in critical.to_dict("records"):
        condition = condition_of(row, conditions)
        open_depths = {int(d) for d in str(row["open_depths"]).split(",") if d}
        cells = diffs[_matching(diffs, condition)]
        here = jobs[_matching(jobs, condition)]
        pair = (row["candidate"], row["baseline"])
        for cell in cells[cells["state"].isin([UNRESOLVED, NO_DATA])].to_dict("records"):
            depth = int(cell["depth"])
            why = f"{cell['state']}: {cell['note']}" if cell["note"] else cell["state"]
            if depth not in open_depths:
                plans.append(CellPlan(condition, depth, NO_EFFECT, why))
                continue
            at = here[here["depth"] == depth]
            seeds = {m: set(at.loc[at["model"] == m, "seed"].astype(int)) for m in pair}
            if min(len(s) for s in seeds.values()) >= max_seeds:
                plans.append(CellPlan(condition, depth, CAPPED, why))
                continue
            both = set.intersection(*seeds.values())
            seed = min(s for s in range(len(both) + 1) if s not in both)
            models = tuple(sorted(m for m in pair if seed not in seeds[m]))
            plans.append(CellPlan(condition, depth, SEED, why, seed, models))
    return plans


def plan_round(a: Analysis, max_seeds: int) -> list[CellPlan]:
    """``plan_seeds`` on an ``Analysis`` (its non-duplicate jobs)."""
    if a.pair is None or a.diffs.empty:
        return []
    jobs = a.summary[~a.summary["duplicate"]]
    return plan_seeds(a.diffs, a.critical, jobs, a.conditions, max_seeds)


# --- commands ----------------------------------------------------------------------------


def _value(value: Any) -> str:
    """A Python (or numpy) value as a Hydra override value."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, bool):
        return str(value).lower()
    if _missing(value):
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
    """One ``python -m vitbn_sweep -m`` argv per (condition, seed, models) group of cells.

    The user's overrides stay, bar the cell's own keys (model, depth, seed and those
    condition keys that the command sets or the loaded jobs vary); the launcher and its
    settings are the user's (``hydra.*`` overrides); jobs land in ``sweep.path``.
    ``extra`` overrides come last, so they win.
    """
    groups: dict[tuple, list[int]] = {}
    for plan in plans:
        if plan.action == SEED:
            groups.setdefault((plan.condition, plan.seed, plan.models), []).append(plan.depth)
    given = {override_key(o) for o in sweep.task} | set(sweep.params)
    hydra = [o for o in sweep.hydra_overrides if override_key(o) not in PLACE_KEYS]
    out = []
    for (condition, seed, models), depths in groups.items():
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


def _label(condition: Sequence[tuple[str, Any]]) -> str:
    return ", ".join(f"{c.removeprefix('cfg.')}={render.plain(v)}" for c, v in condition)


def describe_round(a: Analysis, plans: Sequence[CellPlan]) -> list[str]:
    """Per condition: the critical depth so far, then each undecided cell and what it gets."""
    lines = []
    for row in a.critical.to_dict("records"):
        condition = condition_of(row, a.conditions)
        lines.append(
            f"  {_label(condition)}: critical depth {row['critical_depth']} "
            f"({row['verdict']}; seeds {row['seeds']})"
        )
        for plan in sorted((p for p in plans if p.condition == condition), key=lambda p: p.depth):
            if plan.action == SEED:
                todo = f"seed {plan.seed} for {', '.join(plan.models)}"
            elif plan.action == CAPPED:
                todo = "no seed: it has max_seeds already"
            else:
                todo = "no seed: it cannot change the critical depth (a larger depth loses)"
            lines.append(f"    depth {plan.depth}: {plan.why} -> {todo}")
    return lines


def _analyze(sweep_dir: Path, settings: Settings) -> Analysis:
    records, stats, sweeps = load_results("files", [str(sweep_dir)])
    return analyze(records, stats, settings, sweeps)


def resolve(
    sweep_dir: str | Path,
    settings: Settings,
    *,
    max_seeds: int = 6,
    max_rounds: int | None = None,
    dry_run: bool = False,
    extra: Sequence[str] = (),
    run: Callable[..., Any] = subprocess.run,
    echo: Callable[[str], None] = print,
) -> int:
    """Rounds of seeds until no cell that matters is undecided; the exit code (0; 1: stuck).

    ``run`` launches one argv (``subprocess.run``'s signature and result); ``dry_run``
    prints the first round's plan and commands and launches nothing.
    """
    if max_seeds < 2:
        raise AnalysisError("max_seeds must be >= 2: one seed gives no interval")
    sweep_dir = Path(sweep_dir)
    sweep = read_sweep(sweep_dir)
    if sweep is None:
        raise AnalysisError(f"{sweep_dir}: no multirun.yaml, so no command to add seeds with")
    origin = origin_doc(sweep_dir)
    cwd = sweep.cwd if sweep.cwd and Path(sweep.cwd).is_dir() else os.getcwd()
    ended = None
    for round_ in range(1, (max_rounds or sys.maxsize) + 1):
        a = _analyze(sweep_dir, settings)
        if ended is not None and len(a.summary) == ended:
            echo("resolve: error: the last round launched jobs but no new result appeared")
            return 1
        ended = len(a.summary)
        plans = plan_round(a, max_seeds)
        seeded = [p for p in plans if p.action == SEED]
        echo(f"resolve round {round_}: {sweep_dir} (launcher: {sweep.launcher or 'default'})")
        echo("\n".join(describe_round(a, plans)) or "  no model pair to compare: nothing to do")
        if not seeded:
            capped = any(p.action == CAPPED for p in plans)
            echo("done: " + ("cells left unresolved at max_seeds" if capped else "resolved"))
            return 0
        varying = {c for c in a.conditions if a.summary[c].nunique(dropna=False) > 1}
        argvs = commands(plans, sweep, varying, extra)
        n_jobs = sum(len(p.models) for p in seeded)
        echo(f"  {n_jobs} job(s) in {len(argvs)} command(s):")
        echo("\n".join("    python " + shlex.join(argv[1:]) for argv in argvs))
        if dry_run:
            return 0
        try:
            for argv in argvs:
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
