"""``python -m analysis {report,critical,resolve,status,dashboard,export} [PATH ...] [options]``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from analysis import dashboard, export, status
from analysis import render as tables
from analysis.compare import Analysis, analyze, win_rule
from analysis.load import SOURCES, default_out, load_results, newest_sweep
from analysis.records import AnalysisError
from analysis.report import demo_note, publish_wandb, resolve_command
from analysis.resolve import MAX_SEEDS, MIN_SEEDS, SEED, plan_round, resolve
from analysis.settings import add_options, from_args


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Critical depth, learning-rate stability and an HTML report of sweeps.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="write <sweep>/report/ and print the answer")
    critical = commands.add_parser("critical", help="print the critical-depth tables only")
    resolve_cmd = commands.add_parser(
        "resolve",
        help="launch one more seed where a critical depth is not settled, until it is",
        description="Round after round: analyse the sweep, launch one more seed (both models) "
        "at each cell that can still change a critical depth and is unresolved, or a win or "
        "lose whose --stop-level interval still reaches across the margin (provisional), "
        "through the sweep's own command and launcher into the same sweep dir; until no such "
        "cell is left or each has --max-seeds seeds.",
    )
    resolve_cmd.add_argument(
        "sweep", nargs="?", help="the sweep dir (default: the newest sweep under outputs/)"
    )
    resolve_cmd.add_argument(
        "--max-seeds", type=int, default=MAX_SEEDS, help="seeds per model and cell"
    )
    resolve_cmd.add_argument("--max-rounds", type=int, help="stop after this many rounds")
    resolve_cmd.add_argument(
        "--stop-level",
        type=float,
        help="a win or lose is settled once its interval at this level clears the margin "
        "(default: 1 - (1 - level) / (max_seeds - 2), 0.9875 for 95%% and 6 seeds; "
        "--stop-level 0.95 stops at the first win or lose: fewer jobs, more wrong answers)",
    )
    resolve_cmd.add_argument(
        "--min-seeds",
        type=int,
        default=MIN_SEEDS,
        help=f"no win or lose settles on fewer seeds per model (default {MIN_SEEDS}); raise "
        "it where seeds fall into rare slow modes (measured in the repository by make "
        "simulate SIM_ARGS='--slow-mode 0.1 0.3 --min-seeds 5')",
    )
    resolve_cmd.add_argument(
        "--gap",
        action="store_true",
        help="also seed each depth whose lr gap is not settled (does the higher lr hurt the "
        "baseline more? settled once its --stop-level interval excludes 0 or lies within "
        "the margin): the same seed for both models at both lrs",
    )
    resolve_cmd.add_argument(
        "--dry-run", action="store_true", help="print the next round's plan, launch nothing"
    )
    resolve_cmd.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra override for the launched jobs (repeatable), e.g. hydra.launcher.n_jobs=4",
    )
    for sub in (report, critical):
        sub.add_argument(
            "paths",
            nargs="*",
            metavar="PATH",
            help="files: sweep or job dirs, searched recursively (default: the newest sweep "
            "under $VITBN_OUTPUT_DIR or ./outputs); wandb: ENTITY/PROJECT; mlflow: experiment "
            "names (default: all)",
        )
        sub.add_argument("--source", choices=SOURCES, default="files")
        sub.add_argument("--group", help="wandb: only runs of this group (sweep name)")
        sub.add_argument("--tracking-uri", help="mlflow: the tracking URI (default: local)")
    for sub in (report, critical, resolve_cmd):
        add_options(sub)
    report.set_defaults(handler=_compare)
    critical.set_defaults(handler=_compare)
    resolve_cmd.set_defaults(handler=_resolve)
    report.add_argument("--out", help="report dir (default: <sweep dir>/report)")
    report.add_argument(
        "--publish-wandb",
        action="store_true",
        help="also log the tables (wandb.Table) and figures (wandb.Image) to a report run "
        "of the wandb project, grouped with the sweep",
    )
    report.add_argument("--wandb-project", default="vitbn-sweep", help="with --publish-wandb")
    report.add_argument("--wandb-entity", help="with --publish-wandb (default: yours)")
    status.add_parser(commands)
    dashboard.add_parser(commands)
    export.add_parser(commands)
    return parser


def _print_answer(a: Analysis) -> None:
    counts = ", ".join(f"{v} {k}" for k, v in a.counts().items() if v)
    print(f"{len(a.summary)} jobs ({counts}) from {', '.join(a.stats.roots)}")
    note = demo_note(a)
    if note:
        print(note.split(". ", 1)[0] + ".")  # its first sentence, before the table
    if a.pair is None:
        print("no model pair to compare: critical depth not computed")
        return
    print(f"critical depth, {a.pair[0]} vs {a.pair[1]}: {a.settings.describe()}")
    print(f"{a.pair[0]} {win_rule(a.settings.margin, a.settings.level)}")
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(tables.critical_table(a.critical, a.conditions).to_string(index=False))
    unsettled = sum(p.action == SEED for p in plan_round(a, MAX_SEEDS))
    if unsettled:
        command, wide = resolve_command(a)
        why = " (some cells' seeds are wide: see the report's Seed spread)" if wide else ""
        print(
            f"{unsettled} cell(s) not settled that can change the answer (unresolved, or a "
            f"provisional win or lose): run `{command}` to settle them{why}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand (its parser's ``handler``, here or in its own module); every
    ``AnalysisError`` (a bad option, no results, ...) is printed here, once, and exits 2."""
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except AnalysisError as exc:
        print(f"analysis: error: {exc}", file=sys.stderr)
        return 2


def _resolve(args: argparse.Namespace) -> int:
    """``resolve``: rounds of seeds into the sweep (``analysis.resolve``)."""
    return resolve(
        args.sweep or newest_sweep(),
        from_args(args),
        max_seeds=args.max_seeds,
        max_rounds=args.max_rounds,
        dry_run=args.dry_run,
        extra=args.override,
        stop_level=args.stop_level,
        min_seeds=args.min_seeds,
        gap=args.gap,
    )


def _compare(args: argparse.Namespace) -> int:
    """``report`` and ``critical``: the answer printed; ``report`` also writes its dir (and
    with ``--publish-wandb`` logs it to wandb)."""
    start = time.perf_counter()
    settings = from_args(args)
    records, stats, sweeps = load_results(
        args.source, args.paths, group=args.group, tracking_uri=args.tracking_uri
    )
    result = analyze(records, stats, settings, sweeps)
    _print_answer(result)
    if args.command != "report":
        return 0
    from analysis.report import write_report

    out = Path(args.out) if args.out else default_out(args.source, stats.roots)
    files = write_report(result, out)
    print(f"report written in {time.perf_counter() - start:.1f} s: {files.html}")
    if args.publish_wandb:
        group = args.group or Path(result.stats.roots[0]).name
        try:
            url = publish_wandb(
                result, files, project=args.wandb_project, entity=args.wandb_entity, group=group
            )
        except Exception as exc:  # the report is written; say loudly what failed
            print(f"analysis: error: publishing to wandb failed: {exc}", file=sys.stderr)
            return 1
        print(f"published to wandb: {url}")
    return 0
