"""The study's answer in sentences, each with its numbers (``make publish`` puts them in
the README and ``results/README.md``), one list per sweep of the study:

- per lr, the critical depth, its verdict, and what is still open;
- per model, the accuracy a higher lr costs, depth by depth;
- whether the critical depth shrinks as the lr grows (settled only where the two ranges
  do not overlap; not asked of a sweep of one depth);
- whether the higher lr hurts the baseline more (``analysis.stability``'s gap);
- where seeds are wide (``analysis.spread``): there a verdict needs many seeds.

The block opens with whether the study has ended (every planned job, the grids' and
``make resolve``'s seeds) or is still in progress. Where the evidence is open the sentence
says so: more seeds, not a stronger sentence.
"""

from __future__ import annotations

import pandas as pd

from analysis import render as tables
from analysis.compare import Analysis, win_rule
from analysis.frames import groups
from analysis.spread import wide_cells, wide_rule
from analysis.stability import BASELINE_MORE, CANDIDATE_MORE, NO_DATA, WITHIN_MARGIN
from studies.study import Published


def _expected(a: Analysis) -> int | None:
    expected = [s.expected for s in a.sweeps]
    return sum(expected) if expected and all(e is not None for e in expected) else None  # type: ignore[misc]


def _done(a: Analysis) -> int:
    jobs = a.jobs
    return int(jobs["status"].isin(["completed", "diverged"]).sum())


def findings(study: list[Published]) -> str:
    """The study's answer in a few sentences per sweep, each with its numbers: the
    critical depth per lr, the lr stability per model, whether the critical depth shrinks
    and whether the higher lr hurts the baseline more; where a cell is unresolved the
    sentence says so (more seeds, not a stronger sentence)."""
    expected = [_expected(p.analysis) for p in study]
    ended = [_done(p.analysis) for p in study]
    total = None if None in expected else sum(expected)  # type: ignore[arg-type]
    lines = [status_line(sum(ended), total), ""]
    for p, planned, n in zip(study, expected, ended, strict=True):
        a = p.analysis
        done = f"{n} of {planned}" if planned is not None else f"{n}"
        so_far = "" if planned is not None and n >= planned else " ended so far"
        candidate, baseline = a.pair or ("?", "?")
        lines.append(f"- **{p.question}** ({done} jobs ended):")
        lines.append(
            f"  - the rule: at a depth, {candidate} against {baseline} "
            f"{win_rule(a.settings.margin, a.settings.level)}; the critical depth is the "
            "smallest depth from which it wins at every swept depth."
        )
        for row in a.critical.to_dict("records"):
            lines.append(
                f"  - lr {tables.plain(row['lr'])}: critical depth **{row['critical_depth']}**: "
                f"{_verdict(row['verdict'], row['detail'])} (depths {row['depths']}{so_far}, "
                f"{row['seeds']} seeds)."
            )
        if not a.stability.empty:
            for model, rows in a.stability.groupby("model", sort=True):
                drops = ", ".join(
                    _at_depth(r, "drop") for r in rows.sort_values("depth").to_dict("records")
                )
                low, high = (tables.plain(rows[k].iloc[0]) for k in ("lr_low", "lr_high"))
                lines.append(
                    f"  - {model}: accuracy lost from lr {low} to {high}, in points with 95 % "
                    f"intervals: {drops}."
                )
        lines += _shrink_findings(a)
        lines += _gap_findings(a)
        lines += _spread_findings(a)
    return "\n".join(lines)


def status_line(done: int, planned: int | None) -> str:
    """Has the study ended? ``done`` jobs ended (completed or diverged) of ``planned`` (the
    sweeps' grids and ``make resolve``'s seeds; None: not known)."""
    open_cells = (
        "Where a cell is unresolved, the answer is more seeds there, not a stronger sentence."
    )
    if planned is not None and done >= planned:
        return (
            f"**Ended**: all {done} planned jobs of the study have ended (the grids and "
            f"`make resolve`'s seeds). {open_cells}"
        )
    of = f"{done} of {planned}" if planned is not None else f"{done} (of a plan of unknown size)"
    return (
        f"**In progress**: {of} planned jobs have ended, and the answer below covers only "
        f"those. {open_cells}"
    )


def _at_depth(row: dict, value: str) -> str:
    """``depth 4: +13.0 [-3.1, +29.0]``: a row's ``value`` in points with its interval."""
    bounds = tables.interval(row["ci_low"], row["ci_high"]) or "(no interval yet)"
    return f"depth {tables.plain(row['depth'])}: {tables.points(row[value])} {bounds}"


def shrinks(low_lr: tuple[int, int | None], high_lr: tuple[int, int | None]) -> str:
    """Does the critical depth shrink from the lower lr to the higher, given each one's
    bounds (low, high; high None: above the swept depths)? yes (every depth the higher lr's
    range allows is below every depth the lower lr's allows), no (none is), or not settled."""
    inf = float("inf")
    low_lr_top = low_lr[1] if low_lr[1] is not None else inf  # its largest possible depth
    high_lr_top = high_lr[1] if high_lr[1] is not None else inf
    if high_lr_top < low_lr[0]:
        return "yes"
    if high_lr[0] >= low_lr_top:
        return "no"
    return "not settled"


def critical_bounds(row: dict) -> tuple[int, int | None]:
    """A critical-depth row's range (low, high; high None: above the swept depths)."""
    top = row["critical_depth_high"]
    return int(row["critical_depth_low"]), None if pd.isna(top) else int(top)


def _shrink_findings(a: Analysis) -> list[str]:
    """One sentence per pair of consecutive lrs: does the critical depth shrink? (Not with
    one depth swept: every answer there is censored at it.)"""
    if a.critical.empty or a.critical["lr"].nunique() < 2 or a.diffs["depth"].nunique() < 2:
        return []
    others = [c for c in a.conditions if c != "lr"]
    lines = []
    for _, rows in groups(a.critical, others):
        ordered = rows.sort_values("lr").to_dict("records")
        for low, high in zip(ordered, ordered[1:], strict=False):  # consecutive lrs
            answer = shrinks(critical_bounds(low), critical_bounds(high))
            why = " (the ranges overlap: more seeds decide it)" if answer == "not settled" else ""
            lines.append(
                f"  - does the critical depth shrink from lr {tables.plain(low['lr'])} to "
                f"{tables.plain(high['lr'])}? **{answer}**: {low['critical_depth']} against "
                f"{high['critical_depth']}{why}."
            )
    return lines


def _gap_text(row: dict) -> str:
    if row["state"] == NO_DATA:
        return f"depth {tables.plain(row['depth'])}: no data"
    return _at_depth(row, "gap")


def _verdict(verdict: str, detail: str) -> str:
    """``unresolved at depth 4, 5: …`` once, not ``unresolved, unresolved at depth 4, 5: …``."""
    return detail if detail.startswith(verdict) else f"{verdict}, {detail}"


def _gap_verdict(
    more: list[str], less: list[str], same: list[str], candidate: str, margin: str
) -> str:
    """The answer in bold: where the interval says the baseline (``more``) or the candidate
    (``less``) loses more, or neither by the margin (``same``); nowhere: not settled."""
    if not more and not less and not same:
        return (
            "**not settled at any depth**: every interval reaches 0 and past the "
            f"±{margin} margin, more seeds decide it"
        )
    parts = [f"**yes at depth {', '.join(more)}** (interval above 0)"] if more else []
    if less:
        parts.append(f"**{candidate} loses more at depth {', '.join(less)}** (interval below 0)")
    if same:
        parts.append(
            f"**neither, within ±{margin}, at depth "
            f"{', '.join(same)}** (interval within the margin)"
        )
    return "; ".join(parts)


def _gap_findings(a: Analysis) -> list[str]:
    """One sentence per lr step: does it hurt the baseline more, depth by depth?"""
    if a.stability_gap.empty or a.pair is None:
        return []
    candidate, baseline = a.pair
    margin = tables.in_points(a.settings.margin)
    lines = []
    for high, rows in a.stability_gap.groupby("lr_high", sort=True):
        rows = rows.sort_values("depth")
        depths = {
            state: [tables.plain(d) for d in rows.loc[rows["state"] == state, "depth"]]
            for state in (BASELINE_MORE, CANDIDATE_MORE, WITHIN_MARGIN)
        }
        gaps = ", ".join(_gap_text(r) for r in rows.to_dict("records"))
        verdict = _gap_verdict(*depths.values(), candidate, margin)
        lines.append(
            f"  - does lr {tables.plain(high)} hurt {baseline} more than {candidate}? "
            f"{verdict}. Points {baseline} loses more, with 95 % intervals: {gaps}."
        )
    return lines


def _spread_findings(a: Analysis) -> list[str]:
    """One sentence naming the cells whose seeds are wide, with the typical sd."""
    wide = wide_cells(a.spread, a.conditions)
    if not wide:
        return []
    return [
        f"  - seeds are **wide** ({wide_rule(a.spread, a.settings.spread)}) at "
        f"{'; '.join(wide)}. Final scores there spread over many points (see the seed "
        "spread table) and a run's score swings between epochs, so a few seeds give a wide "
        "interval: these cells need many seeds before their verdict means much; the "
        "cross-checks' AUC basis is steadier."
    ]
