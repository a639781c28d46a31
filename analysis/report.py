"""Write a report dir: report.html, report.md, results.csv, summary.csv and figures/."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from analysis import figures as figs
from analysis import render as tables
from analysis.compare import (
    NEVER,
    NOT_ENOUGH,
    UNDECIDED,
    UNRESOLVED,
    WINS_FROM_SMALLEST,
    Analysis,
    state_legend,
    win_rule,
)
from analysis.frames import flat_cells, named_conditions
from analysis.render import Figure, Section, to_html, to_markdown
from analysis.settings import Settings
from analysis.spread import MIN_CELLS, WIDE_MIN_SEEDS, wide_cells
from analysis.stability import NO_DATA as GAP_NO_DATA
from analysis.stability import UNRESOLVED as GAP_UNRESOLVED
from vitbn_sweep.grid import values_text
from vitbn_sweep.store import atomic_write_text

TITLE = "vitbn_sweep report"
OPEN_GAP = (GAP_UNRESOLVED, GAP_NO_DATA)  # gaps that more seeds may settle


@dataclass
class ReportFiles:
    """The files a report wrote."""

    out: Path
    html: Path
    markdown: Path
    results: Path
    summary: Path
    figures: list[Figure]


def method_text(settings: Settings) -> list[str]:
    """How the cells and the critical depth are decided, in words."""
    return [
        f"Each cell (condition and depth) compares the mean score over seeds with a "
        f"{settings.level:.0%} t interval: paired by seed where both models ran the same seeds "
        "(a seed fixes the data stream, so both saw the same data), pooled (Student) t where "
        "they ran as many seeds but not the same ones, Welch t where the counts differ; the "
        "per-depth table names the method of each cell.",
        f"A cell's state: the candidate {state_legend(settings.margin, settings.level)} (always "
        "so with one seed per model: no interval); *no data* when a model has no scored seed. "
        "The critical depth needs every swept depth from it "
        "upward to be a win: an intersection-union test, which keeps the level of each "
        "interval without a multiplicity correction.",
        "Censored answers: '<= 4' means the candidate wins from the smallest depth swept (4) "
        "on, so the critical depth is 4 or smaller; '> 7' that it does not win at the largest "
        "depth swept. Unresolved cells that can still move it leave two answers ('3 or 4') "
        "or a range ('3 to > 7').",
    ]


def _label(row: dict, conditions: list[str]) -> str:
    return tables.condition_text((c, row[c]) for c in conditions)


def sweep_arg(a: Analysis) -> str:
    """The sweep dir to name in a printed command (``make resolve SWEEP=...``): the one loaded
    from files, shell-quoted so that a pasted command works for ``sweep_name='my sweep'``;
    else '...'."""
    if a.stats.source == "files" and len(a.stats.roots) == 1:
        return shlex.quote(a.stats.roots[0])
    return "..."


def resolve_command(a: Analysis) -> tuple[str, int]:
    """The ``make resolve`` command that settles the open cells, and how many model-cells have
    wide seeds: where any have, it asks ``MIN_SEEDS`` of ``WIDE_MIN_SEEDS``, so that no cell
    settles on a few seeds that all missed a slow mode."""
    wide = int(a.spread["wide"].sum()) if not a.spread.empty else 0
    least = f" MIN_SEEDS={WIDE_MIN_SEEDS}" if wide else ""
    return f"make resolve SWEEP={sweep_arg(a)}{least}", wide


def _resolve_hint(a: Analysis) -> str:
    command, wide = resolve_command(a)
    if wide:
        return (
            f"Run `{command}` to settle them: it adds seeds only where they can change the "
            f"answer, and {wide} model-cell(s) have wide seeds (see Seed spread), where a few "
            f"seeds can all miss a slow mode: MIN_SEEDS={WIDE_MIN_SEEDS} settles no cell on "
            "fewer."
        )
    return f"Run `{command}` to settle them: it adds seeds only where they can change the answer."


def _spread(a: Analysis, figures: list[Figure]) -> Section:
    section = Section("Seed spread", figures=figures)
    typical = a.spread["typical_sd"].iloc[0]
    known = not pd.isna(typical)
    section.text.append(
        "Each model's seeds per cell: their scores in seed order, sd and range. A cell is "
        f"*wide* when its sd exceeds {a.settings.spread:g} times the typical one (the median "
        "over the cells"
        + (
            f": {typical * 100:.1f} points)."
            if known
            else f"; fewer than {MIN_CELLS} cells: none)."
        )
        + " Wide seeds (a spread over many points, or a rare slow run) strain the t "
        "interval's assumption: a few seeds can miss part of the spread, so judge such a "
        "cell on many seeds."
    )
    wide = wide_cells(a.spread, a.conditions)
    if wide:
        section.notes.append("Wide: " + "; ".join(wide) + ".")
    section.tables.append(tables.spread_table(a.spread, a.conditions))
    return section


def _open_cells(a: Analysis) -> list[str]:
    """One line per cell that can still change a critical depth."""
    lines = []
    for row in a.critical.to_dict("records"):
        depths = {int(d) for d in str(row["open_depths"]).split(",") if d}
        cells = a.diffs[a.diffs["depth"].isin(depths)]
        for column in a.conditions:
            cells = cells[cells[column].astype(str) == str(row[column])]
        for cell in cells.to_dict("records"):
            lines.append(f"{_label(row, a.conditions)}, depth {cell['depth']}: {cell_text(cell)}")
    return lines


def cell_text(cell: dict) -> str:
    """``unresolved (+0.8 points [-1.2, +2.8], paired t, seeds 2 / 2; interval reaches 0)``."""
    shown = tables.interval(cell["ci_low"], cell["ci_high"])
    return (
        f"{cell['state']} ({tables.points(cell['diff'])} points {shown}, {cell['method']}, "
        f"seeds {cell['n_a']} / {cell['n_b']}; {cell['note']})"
    )


DEMO_SWEEP = "smoke"  # conf/experiment/smoke.yaml's sweep_name: the demo behind `make run`


def demo_note(a: Analysis) -> str | None:
    """The first words of a report of the smoke demo, which only shows that the pipeline runs:
    with 2 epochs on a subset its differences say nothing about the question."""
    if not any((r.result.get("config") or {}).get("sweep_name") == DEMO_SWEEP for r in a.records):
        return None
    epochs = int(a.summary["epochs"].max())
    images = a.summary["train_size"].dropna()
    on = f"{int(images.max()):,} training images" if len(images) else "a subset"
    seeds = a.summary["seed"].nunique()
    return (
        f"A demo, too small to answer the question: the smoke sweep (make run) trains each "
        f"model for {epochs} epoch{'s' if epochs != 1 else ''} on {on} with {seeds} seed"
        f"{'s' if seeds != 1 else ''}, to show that a sweep and its report run end to end. "
        "Its accuracies are far from trained and its differences say nothing about BatchNorm "
        "in the FFN; the study's answer (10 epochs on all 60,000 images, and more seeds) is "
        "in results/README.md."
    )


def answer_sentence(row: dict, shown: list[str], candidate: str, baseline: str) -> str:
    """One condition's critical depth in one sentence, from compare's verdict and detail
    (the one place the report words them); ``shown``: the conditions that name it."""
    label = figs.facet_title(_label(row, shown))
    depth, verdict, detail = row["critical_depth"], row["verdict"], row["detail"]
    if verdict == WINS_FROM_SMALLEST:
        said = f": {candidate} wins against {baseline} at every swept depth"
    elif verdict == NEVER:
        said = f": {candidate} does not win against {baseline} at the largest swept depth"
    elif verdict in (UNDECIDED, NOT_ENOUGH):
        said = f", {detail}"
    else:  # wins from depth k
        said = f": {candidate} {verdict} on and {detail}"
    depths = values_text(str(row["depths"]).split(","), ", ")  # 1-7
    seeds = f"{row['seeds']} seeds per model, depths {depths}"
    return f"{label}: critical depth {depth}{said} ({seeds})."


def answers(a: Analysis) -> list[str]:
    """The answer per condition, a sentence each (``answer_sentence``), each named by its lr
    and by the other conditions that differ between the answers."""
    if a.pair is None:
        return []
    shown = named_conditions(a.critical, a.conditions, always=("lr",))
    return [answer_sentence(row, shown, *a.pair) for row in a.critical.to_dict("records")]


def _lead(a: Analysis) -> Section:
    """The report's first section: the answer per condition in a sentence each."""
    section = Section("The answer")
    note = demo_note(a)
    if note:
        section.text.append(note)
    if a.pair is None:
        models = ", ".join(sorted(a.summary["model"].unique()))
        section.text.append(f"No model pair to compare among the results ({models}).")
        return section
    candidate, baseline = a.pair
    section.text.append(
        f"The critical depth: the smallest swept depth from which {candidate} wins against "
        f"{baseline} at every larger swept depth too. At a depth, {candidate} "
        f"{win_rule(a.settings.margin, a.settings.level)}."
    )
    section.bullets += answers(a)
    open_cells = _open_cells(a)
    if open_cells:
        section.notes.append(
            f"{len(open_cells)} cell(s) can still change the answer (listed under Critical "
            "depth). " + _resolve_hint(a)
        )
    return section


def _answer(a: Analysis) -> Section:
    """The critical depth's table, its basis and method, and the cells still open."""
    section = Section("Critical depth: table and method")
    if a.pair is None:
        return section
    section.text.append(f"Basis: {a.settings.describe()}.")
    section.tables.append(tables.critical_table(a.critical, a.conditions))
    section.text += method_text(a.settings)
    open_cells = _open_cells(a)
    if open_cells:
        section.notes += [f"can still change the answer: {line}" for line in open_cells]
        section.notes.append(_resolve_hint(a))
    return section


def _jobs(a: Analysis) -> Section:
    section = Section("Sweep and jobs")
    for sweep in a.sweeps:
        params = "; ".join(f"{k}={v}" for k, v in sweep.params.items())
        size = f"{sweep.expected} jobs" if sweep.expected is not None else "grid size unknown"
        if sweep.planned is not None and sweep.planned != sweep.expected:
            size = f"{sweep.planned} jobs over every command into it; the latest: {size}"
        swept = f"; grid from its config: {params}" if params else ""
        section.text.append(f"Sweep {sweep.path} ({size}{swept}), started by:")
        section.code.append(sweep.command)
    if not a.sweeps:
        section.text.append(f"Results from {a.stats.source}: {', '.join(a.stats.roots)}")
    counts = a.counts()
    shown = [tables.plain(v) if v is not None else "unknown" for v in counts.values()]
    section.tables.append(pd.DataFrame({"jobs": list(counts), "count": shown}))
    section.notes.append(
        "Incomplete: a job dir without result.json (running or cut). Not started: jobs a "
        "command into the sweep dir planned (grid.json; for older sweeps the grid of the "
        "latest command, from multirun.yaml) that have no job dir yet. Duplicates: older "
        "jobs with the same config as a later one, left out of the analysis."
    )
    for status in ("diverged", "failed"):
        rows = a.jobs[a.jobs["status"] == status]
        for job in rows.to_dict("records"):
            why = (
                f"at epoch {tables.plain(job['diverged_epoch'])}"
                if status == "diverged"
                else tables.plain(job["error"])
            )
            section.notes.append(f"{status}: {job['job']} {why}")
    section.notes += [f"incomplete: {p}" for p in a.stats.incomplete]
    return section


def _evidence(a: Analysis, figures: dict[str, list[Figure]]) -> list[Section]:
    sections = []
    if not a.diffs.empty:
        diffs = Section("Per-depth differences")
        diffs.text.append(
            "Difference of the mean score over seeds (candidate minus baseline), in percentage "
            f"points, with its {a.settings.level:.0%} t interval when both models have >= 2 "
            "seeds, the interval's method and the cell's state."
        )
        unresolved = int((a.diffs["state"] == UNRESOLVED).sum())
        if unresolved:
            diffs.notes.append(
                f"{unresolved} unresolved cell(s); those below a lost depth cannot change the "
                "critical depth. " + _resolve_hint(a)
            )
        diffs.tables.append(tables.diffs_table(a.diffs, a.conditions, a.spread))
        diffs.figures = figures["heatmap"] + figures["by_depth"]
        sections.append(diffs)
    if not a.spread.empty:
        sections.append(_spread(a, figures["seeds"]))
    sections.append(Section("Accuracy by epoch", figures=figures["curves"]))
    stability = Section("Learning-rate stability")
    if a.stability.empty:
        stability.text.append("Only one learning rate swept: nothing to compare.")
    else:
        stability.text.append(
            "Per model and depth, the score at the lowest learning rate minus that at a higher "
            "one, in points (positive: accuracy lost at the higher rate), with its interval."
        )
        stability.tables.append(tables.stability_table(a.stability, a.conditions))
    stability.figures = figures["lr"]
    sections.append(stability)
    if not a.stability_gap.empty:
        candidate, baseline = a.pair or ("candidate", "baseline")
        gap = Section(f"Does the higher rate hurt {baseline} more than {candidate}?")
        gap.text.append(
            f"Per depth, the points {baseline} loses minus the points {candidate} loses (each "
            "seed's loss is its score at the low rate minus at the high one), with its "
            "interval, paired by seed when both models ran the same seeds at both rates; "
            "a model loses more where the interval excludes 0, and neither does where it "
            f"lies within ±{tables.in_points(a.settings.margin)} (the margin)."
        )
        gap.tables.append(tables.gap_table(a.stability_gap, a.conditions))
        open_gaps = int(a.stability_gap["state"].isin(OPEN_GAP).sum())
        if open_gaps:
            where = sweep_arg(a)
            gap.notes.append(
                f"{open_gaps} depth(s) unresolved: `make resolve SWEEP={where} GAP=1` adds "
                "seeds (both models at both rates) until each gap excludes 0 or lies within "
                "the margin."
            )
        gap.figures = figures["stability"]
        sections.append(gap)
    if figures["warmup"]:
        sections.append(Section("Warm-up (DNN)", figures=figures["warmup"]))
    return sections


def _config(a: Analysis) -> Section:
    section = Section("Config")
    rows = []
    for key in ("config", "versions"):
        flat = [flat_cells(rec.result[key] or {}) for rec in a.records]
        for name in sorted({k for f in flat for k in f}):
            values = sorted({json.dumps(f.get(name), default=str) for f in flat})
            rows.append({"key": f"{key}.{name}", "value(s)": ", ".join(values)})
    section.text.append("Every config key with its value, or its values where jobs differ.")
    section.tables.append(pd.DataFrame(rows))
    return section


def _figures(a: Analysis, out: Path) -> dict[str, list[Figure]]:
    """The report's figures by the section that shows them (each figure function draws none
    where its data is missing), in the order the report and the dashboard list them."""
    tidy = a.tidy[~a.tidy["duplicate"]]
    return {
        "curves": figs.accuracy_curves(tidy, a.conditions, a.settings, out),
        "lr": figs.lr_comparison(tidy, a.conditions, a.settings, out),
        "warmup": figs.warmup_curves(tidy, a.settings, out),
        "stability": figs.stability_by_depth(
            a.stability, a.stability_gap, a.conditions, a.settings, out
        ),
        "heatmap": figs.diff_heatmap(a.diffs, a.critical, a.conditions, out),
        "by_depth": figs.diff_by_depth(a.diffs, a.critical, a.conditions, a.settings, out),
        "seeds": figs.seed_scores(a.scores, a.spread, a.conditions, a.settings, out),
    }


def _analysis_tables(a: Analysis) -> dict[str, pd.DataFrame]:
    """The analysis's own tables by name: each a CSV of the report (and a table on the
    dashboard) where it has rows."""
    return {
        "critical_depth": a.critical,
        "depth_differences": a.diffs,
        "lr_stability": a.stability,
        "lr_stability_gap": a.stability_gap,
        "seed_spread": a.spread,
    }


def _remove_previous(out: Path, tables: list[str]) -> None:
    """Drop an earlier report's figures and ``tables``' CSVs, so none outlive their data."""
    for pattern in ("figures/*.png", "figures/*.svg", *(f"{name}.csv" for name in tables)):
        for path in out.glob(pattern):
            path.unlink()


def write_report(a: Analysis, out: str | Path) -> ReportFiles:
    """Write the report of ``a`` into ``out`` (created; files there are replaced)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    optional = _analysis_tables(a)
    _remove_previous(out, list(optional))
    made = _figures(a, out / "figures")
    jobs_section = Section("All jobs", tables=[tables.jobs_table(a.summary, a.conditions)])
    sections = [_lead(a), _answer(a), _jobs(a), *_evidence(a, made), jobs_section, _config(a)]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"{len(a.summary)} jobs from {', '.join(a.stats.roots)}; generated {stamp}"
    title = TITLE + (" (a demo: too small to answer the question)" if demo_note(a) else "")
    files = ReportFiles(
        out=out,
        html=out / "report.html",
        markdown=out / "report.md",
        results=out / "results.csv",
        summary=out / "summary.csv",
        figures=[f for group in made.values() for f in group],
    )
    # Every file through a temporary file and a rename: no half-written report.
    atomic_write_text(files.html, to_html(title, subtitle, sections, out))
    atomic_write_text(files.markdown, to_markdown(title, subtitle, sections, out))
    atomic_write_text(files.results, a.tidy.to_csv(index=False))
    atomic_write_text(files.summary, a.summary.to_csv(index=False))
    for name, frame in optional.items():
        if not frame.empty:
            atomic_write_text(out / f"{name}.csv", frame.to_csv(index=False))
    return files


def publish_wandb(
    a: Analysis, files: ReportFiles, *, project: str, group: str, entity: str | None
) -> str:
    """Put the answer on the dashboard: the report's tables and figures, logged to a wandb
    report run of ``project`` in the sweep's ``group``; returns the run's URL."""
    from vitbn_sweep.tracking.wandb_report import publish_report

    return publish_report(
        {  # missing values (NaN, pd.NA) as None: JSON for wandb.Table
            name: frame.astype(object).where(frame.notna(), None)
            for name, frame in _analysis_tables(a).items()
            if not frame.empty
        },
        {figure.name: figure.png for figure in files.figures},
        project=project,
        entity=entity,
        group=group,
        wandb_dir=files.out,
    )
