"""``python -m analysis dashboard [SWEEP]``: the study's wandb views as code (wandb-workspaces).

For the sweep's wandb group (``logger.group``, the sweep name) it builds:

- a saved workspace view: the sweep's job runs (its group, not the report run),
  grouped by model and depth (and lr where several were swept), one colour per model;
  line panels of ``test_acc``, ``test_acc_clean`` and ``train_loss`` against ``epoch``;
  final accuracy against depth; a parallel-coordinates panel over depth, lr, seed and
  final accuracy; a runs table with those columns pinned;
- a report: the verdict per lr in words, the critical-depth table and the per-depth
  differences with their intervals (from the analysis), the same panels, and the
  report's figures (logged to the sweep's report run by ``publish_report``).

It writes the report files (``analysis report``'s) and the exact specification that
wandb-workspaces uploads to ``<sweep>/report/wandb_dashboard.json``. With credentials
and a reachable server it then publishes the report run, the view and the report; later
calls update both in place (their URLs are kept in that file). Without credentials or
network it says how to publish later and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis import render
from analysis.compare import Analysis, analyze
from analysis.load import load_results
from analysis.report import answers, publish_wandb, write_report
from analysis.settings import add_options, from_args
from vitbn_sweep import store
from vitbn_sweep.store import atomic_write_text
from vitbn_sweep.tracking.wandb_report import FIGURES_KEY
from vitbn_sweep.tracking.wandb_tracker import (
    DEFAULT_BASE_URL,
    REPORT_JOB_TYPE,
    resolve_mode,
    server_unreachable,
)

SPEC_FILE = "wandb_dashboard.json"
PROBE_TIMEOUT_S = 5.0  # how long the wandb server may take to answer before we go offline
# What the views show, named as the tracker logs it (tests check these against real runs):
EPOCH = "epoch"  # history key, the x axis
CURVES = ("test_acc", "test_acc_clean", "train_loss")  # history keys, by epoch
FINAL_ACC, BEST_ACC, STATUS = "final.test_acc", "best.test_acc", "status"  # summary keys
MODEL, DEPTH, LR, SEED = "model.name", "model.depth", "optim.lr", "trainer.seed"  # config
MODEL_COLORS = {
    "vit": "#1f77b4",
    "vitbnffn": "#d62728",
    "vitbn": "#2ca02c",
    "dnn": "#9467bd",
    "dnnbn": "#ff7f0e",
}


@dataclass(frozen=True)
class Target:
    """Where the views go: ``entity`` is "" until known (wandb's default entity)."""

    entity: str
    project: str
    group: str


def grouping(a: Analysis) -> list[str]:
    """Config keys the runs are grouped by: model, depth, and lr where several were swept."""
    lrs = a.summary["lr"].dropna().unique() if "lr" in a.summary else []
    return [MODEL, DEPTH, *([LR] if len(lrs) > 1 else [])]


def run_filter(group: str, *, report_run: bool = False) -> Any:
    """The sweep's job runs (or its report run) in the project."""
    import wandb_workspaces.workspaces as ws

    job_type = ws.Metric("JobType")
    kind = job_type == REPORT_JOB_TYPE if report_run else job_type != REPORT_JOB_TYPE
    return ws.And(ws.Metric("Group") == group, kind)


def curve_panels() -> list[Any]:
    """``test_acc``, ``test_acc_clean`` and ``train_loss`` against ``epoch``."""
    import wandb_workspaces.reports.v2 as wr

    return [wr.LinePlot(title=f"{key} by epoch", x=EPOCH, y=[key]) for key in CURVES]


def depth_panels() -> list[Any]:
    """Final accuracy against depth; parallel coordinates over depth, lr, seed, accuracy."""
    import wandb_workspaces.reports.v2 as wr

    by_depth = wr.ScatterPlot(
        title=f"{FINAL_ACC} by depth (colour: model)",
        x=wr.Config(DEPTH),
        y=wr.SummaryMetric(FINAL_ACC),
    )
    columns = [wr.Config(DEPTH), wr.Config(LR), wr.Config(SEED), wr.SummaryMetric(FINAL_ACC)]
    parallel = wr.ParallelCoordinatesPlot(
        title="depth, lr, seed and final accuracy",
        columns=[wr.ParallelCoordinatesPlotColumn(metric=c) for c in columns],
    )
    return [by_depth, parallel]


def _column(key: str, section: str) -> str:
    """A runs-table column: ``config:model.value.depth`` (nested config), ``summary:a.b``."""
    if section == "config":
        first, *rest = key.split(".")
        return ".".join(["config:" + first, "value", *rest])
    return f"summary:{key}"


def build_workspace(target: Target, keys: Sequence[str], models: Sequence[str]) -> Any:
    """The saved view of the sweep's runs."""
    import wandb_workspaces.workspaces as ws

    columns = [_column(k, "config") for k in (MODEL, DEPTH, LR, SEED)]
    columns += [_column(k, "summary") for k in (FINAL_ACC, BEST_ACC, STATUS)]
    return ws.Workspace(
        entity=target.entity,
        project=target.project,
        name=f"vitbn_sweep {target.group}",
        sections=[
            ws.Section(name="Accuracy and loss by epoch", panels=curve_panels(), is_open=True),
            ws.Section(name="Final accuracy by depth", panels=depth_panels(), is_open=True),
        ],
        runset_settings=ws.RunsetSettings(
            filters=run_filter(target.group),
            groupby=[ws.Config(k) for k in keys],
            pinned_columns=columns,
            group_colors={m: MODEL_COLORS[m] for m in models if m in MODEL_COLORS},
        ),
    )


def verdicts(a: Analysis) -> list[str]:
    """One sentence per condition (learning rate, ...): the report's own answer sentences."""
    if a.pair is None:
        return ["No model pair to compare: the critical depth is not computed."]
    return answers(a)


def build_report(
    target: Target, a: Analysis, keys: Sequence[str], figures: Sequence[str], source: str
) -> Any:
    """The report: verdicts, the critical-depth and difference tables, panels, figures."""
    import wandb_workspaces.reports.v2 as wr

    def runset(name: str, report_run: bool = False) -> Any:
        return wr.Runset(
            entity=target.entity,
            project=target.project,
            name=name,
            filters=run_filter(target.group, report_run=report_run),
            groupby=[] if report_run else [f"config.{k}" for k in keys],
        )

    blocks: list[Any] = [
        wr.H1(text="The answer"),
        wr.MarkdownBlock(text="\n".join(f"- {line}" for line in verdicts(a))),
        wr.P(text=f"Basis: {a.settings.describe()}."),
    ]
    if a.pair is not None and not a.diffs.empty:
        blocks += [
            wr.H2(text="Critical depth"),
            wr.MarkdownBlock(text=render.markdown(render.critical_table(a.critical, a.conditions))),
            wr.H2(text="Per-depth differences (points, with the interval)"),
            wr.MarkdownBlock(text=render.markdown(render.diffs_table(a.diffs, a.conditions))),
        ]
    blocks += [
        wr.H2(text="Runs of the sweep"),
        wr.PanelGrid(
            runsets=[runset(f"sweep {target.group}")], panels=curve_panels() + depth_panels()
        ),
    ]
    if figures:
        media = [
            wr.MediaBrowser(title=name, media_keys=[FIGURES_KEY.format(name)], num_columns=1)
            for name in figures
        ]
        blocks += [
            wr.H2(text="Figures of the report"),
            wr.PanelGrid(runsets=[runset("report run", report_run=True)], panels=media),
        ]
    blocks.append(wr.P(text=f"Generated by `python -m analysis dashboard` from {source}."))
    return wr.Report(
        entity=target.entity,
        project=target.project,
        title=f"vitbn_sweep {target.group}: critical depth"[:128],
        description=a.settings.describe(),
        blocks=blocks,
    )


def specification(workspace: Any, report: Any) -> dict[str, Any]:
    """The models wandb-workspaces uploads (``Workspace.save``, ``Report.save``), as JSON."""

    def dump(model: Any) -> Any:
        return model.model_dump(mode="json", by_alias=True, exclude_none=True)

    return {"workspace": dump(workspace._to_model()), "report": dump(report._to_model())}


# --- publishing ---------------------------------------------------------------------------


def _save_over(new: Any, url: str | None, fields: tuple[str, ...]) -> str:
    """Save ``new`` (a view or a report) over the saved one at ``url``, its ``fields``
    replaced, so that its URL stays; where there is none, as a new one. Returns its URL."""
    if url:
        try:
            saved = type(new).from_url(url)
        except Exception as exc:  # deleted, renamed, no access: make a new one
            print(f"dashboard: {url} not found ({exc}); creating a new one", file=sys.stderr)
        else:
            for name in fields:
                setattr(saved, name, getattr(new, name))
            new = saved
    new.save()
    return new.url


def publish(workspace: Any, report: Any, previous: dict[str, Any]) -> dict[str, str]:
    """Save the view and the report (over the ones of ``previous`` URLs): their URLs."""
    view_fields = ("name", "sections", "settings", "runset_settings")
    report_fields = ("title", "description", "blocks")
    return {
        "workspace_url": _save_over(workspace, previous.get("workspace_url"), view_fields),
        "report_url": _save_over(report, previous.get("report_url"), report_fields),
    }


# --- command ------------------------------------------------------------------------------


def add_parser(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser("dashboard", help="create or update the sweep's wandb view+report")
    sub.add_argument("sweep", nargs="?", help="the sweep dir (default: the newest sweep)")
    sub.add_argument("--entity", help="wandb entity (default: logger.entity, else yours)")
    sub.add_argument("--project", help="wandb project (default: the sweep's logger.project)")
    sub.add_argument("--group", help="wandb group (default: the sweep's logger.group)")
    add_options(sub)
    sub.set_defaults(handler=run)


def target_of(a: Analysis, args: argparse.Namespace) -> Target:
    """Entity, project and group: the options, else what the sweep's jobs logged to."""
    config = a.records[0].result["config"]
    logger = config.get("logger") or {}
    wandb_logger = logger if logger.get("name") == "wandb" else {}
    return Target(
        entity=args.entity or wandb_logger.get("entity") or "",
        project=args.project or wandb_logger.get("project") or "vitbn-sweep",
        group=args.group or wandb_logger.get("group") or str(config.get("sweep_name")),
    )


def _publish_hint(sweep: str) -> str:
    return (
        "to publish it: `wandb login` (or set WANDB_API_KEY), upload the runs with "
        f"`wandb sync {sweep}/*/wandb/offline-run-*`, then run `python -m analysis dashboard "
        f"{sweep}` again"
    )


def _go_online(target: Target, a: Analysis, files: Any) -> Target:
    """Publish the report run (figures, tables); returns the target with its entity."""
    import wandb

    entity = target.entity or wandb.Api().default_entity or ""
    publish_wandb(a, files, project=target.project, entity=entity or None, group=target.group)
    return Target(entity, target.project, target.group)


def offline_reason(env: dict[str, str]) -> str | None:
    """Why the views cannot be published now (no credentials, no server), or None."""
    mode, why = resolve_mode("auto", env)
    if mode != "online":
        return f"wandb mode {mode} ({why})"
    base_url = env.get("WANDB_BASE_URL") or DEFAULT_BASE_URL
    why = server_unreachable(base_url, PROBE_TIMEOUT_S)
    return None if why is None else f"{base_url} is not reachable ({why})"


def run(args: argparse.Namespace) -> int:
    records, stats, sweeps = load_results("files", [args.sweep] if args.sweep else [])
    a = analyze(records, stats, from_args(args), sweeps)
    sweep = stats.roots[0]
    files = write_report(a, Path(sweep) / "report")
    print(f"report written: {files.html}")
    target, keys = target_of(a, args), grouping(a)
    path = files.out / SPEC_FILE
    previous = _read_published(path)
    why_not, error, published = offline_reason(dict(os.environ)), None, {}
    if why_not is None:
        try:
            target = _go_online(target, a, files)
        except Exception as exc:  # the specification is written all the same
            error = exc
    workspace = build_workspace(target, keys, sorted(a.summary["model"].unique()))
    report = build_report(target, a, keys, [f.name for f in files.figures], sweep)
    if why_not is None and error is None:
        try:
            published = publish(workspace, report, previous)
        except Exception as exc:
            error = exc
    doc = {"target": vars(target), **specification(workspace, report)}
    doc["published"] = published or previous
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
    print(f"wandb dashboard specification: {path}")
    if error is not None:
        print(f"analysis: error: publishing to wandb failed: {error}", file=sys.stderr)
        return 1
    if why_not is not None:
        print(f"not published: {why_not}; {_publish_hint(sweep)}")
        return 0
    print(f"wandb view: {published['workspace_url']}\nwandb report: {published['report_url']}")
    return 0


def _read_published(path: Path) -> dict[str, Any]:
    doc = store.read_json(path)  # None when absent or damaged: nothing published to keep
    published = doc.get("published") if isinstance(doc, dict) else None
    return dict(published) if isinstance(published, dict) else {}
