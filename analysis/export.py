"""``python -m analysis export [SWEEP] --to mlflow|wandb``: a finished sweep into a tracker.

A tracker cannot be added by rerunning a sweep: the logger is not part of a job's
identity, so a rerun with ``logger=mlflow`` skips every finished job. ``export``
reads the job dirs (``analysis.load``) and logs each ended job as its live tracker
would have: the same run identity, name, config, per-epoch metrics (step = epoch),
result summary and tags, through the trackers' own functions.

Which jobs: completed and diverged ones. Failed jobs are left out (their record
says what went wrong on the machine, not what the model learned; rerunning the
sweep retries them), and so are job dirs without ``result.json`` (running or cut).

Idempotent, by the job's tracker run (``vitbn_sweep.tracking.run.tracker_run``,
the id the live trackers use):

- MLflow: a run of the job that already holds its result (tag ``vitbn.ended_at``
  equal to the result's ``ended_at``) is kept as it is; a run of the job without it
  (a live run cut short, an interrupted export, a job rerun since) is updated: new
  params, the epochs after its last logged one, the result; otherwise a new run.
- wandb: runs are written into ``<outputs>/wandb-export/<sweep>/<time>/``, offline
  unless asked otherwise (``--mode``, ``WANDB_MODE``), and listed in that folder's
  ``exported.jsonl``: a job listed there with the same ``ended_at`` is skipped.
  Its run id is the live run's, so uploading both gives one run on the server.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from analysis.load import newest_sweep, records_from_dirs
from analysis.records import AnalysisError, JobRecord
from vitbn_sweep import store
from vitbn_sweep.store import RESULT_FILE
from vitbn_sweep.tracking.run import TrackerRun, tracker_run

EXPORTED = ("completed", "diverged")
TRACKERS = ("mlflow", "wandb")
WANDB_MODES = ("offline", "online")
WANDB_EXPORT_DIR = "wandb-export"  # under the sweep's outputs dir, next to mlflow/
LEDGER = "exported.jsonl"  # in WANDB_EXPORT_DIR/<sweep>/: one line per exported run
DEFAULT_PROJECT = "vitbn-sweep"  # conf/logger/wandb.yaml


@dataclass
class Job:
    """An ended job, located: ``config`` has ``paths.outputs`` where its sweep is now."""

    record: JobRecord
    config: dict[str, Any]
    identity: TrackerRun  # its ``job_dir`` is where the job is now

    @property
    def result(self) -> dict[str, Any]:
        return self.record.result

    def rows(self) -> list[dict[str, Any]]:
        """The per-epoch metrics rows, as the live tracker was given them."""
        frame = self.record.metrics
        return [{**row, "epoch": int(row["epoch"])} for row in frame.to_dict("records")]


@dataclass
class Exported:
    """What one export did: the job dirs it wrote, updated, kept or left out."""

    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # already in the tracker with this result
    failed: list[str] = field(default_factory=list)  # not exported
    unfinished: list[str] = field(default_factory=list)  # no result.json: not exported
    where: str = ""
    hint: str = ""  # what to do next (browse, upload)

    def lines(self, sweep: str, tracker: str) -> list[str]:
        skipped = []
        if self.failed:
            skipped.append(f"{len(self.failed)} failed (rerun the sweep to retry them)")
        if self.unfinished:
            skipped.append(f"{len(self.unfinished)} without {RESULT_FILE} (running or cut)")
        where = f" ({self.where})" if self.where else ""
        out = [
            f"exported {sweep} to {tracker}{where}: {len(self.new)} new runs, "
            f"{len(self.updated)} updated, {len(self.kept)} already there",
        ]
        if skipped:
            out.append(f"not exported: {', '.join(skipped)}")
        if self.hint:
            out.append(self.hint)
        return out


def _located(config: Mapping[str, Any], job_dir: Path, sweep_dir: Path) -> dict[str, Any]:
    """``config`` with ``paths.outputs`` = the folder that holds the job's sweep dir now.

    The job's identity and the default MLflow store derive from it, so they are the
    live tracker's whichever directory ``export`` runs from.
    """
    name = str(config["sweep_name"])
    above = [p.parent for p in job_dir.resolve().parents if p.name == name]
    outputs = above[0] if above else sweep_dir.resolve().parent
    return {**config, "paths": {**(config.get("paths") or {}), "outputs": str(outputs)}}


def sweep_jobs(sweep_dir: Path) -> tuple[list[Job], Exported]:
    """The sweep's exportable jobs, and an ``Exported`` that lists the ones left out."""
    records, stats = records_from_dirs([sweep_dir])
    report = Exported(unfinished=list(stats.incomplete))
    jobs = []
    for record in records:
        job_dir = Path(record.path or sweep_dir).resolve()
        if record.result["status"] not in EXPORTED:
            report.failed.append(str(job_dir))
            continue
        config = _located(record.result["config"], job_dir, sweep_dir)
        jobs.append(Job(record, config, tracker_run(config, job_dir)))
    return jobs, report


def _ms(stamp: Any) -> int | None:
    """An ISO time of a result (``started_at``, ``ended_at``) in ms, or None."""
    try:
        return int(datetime.fromisoformat(str(stamp)).timestamp() * 1000)
    except ValueError:
        return None


# --- MLflow -------------------------------------------------------------------------------


def _epoch_stamps(job: Job, rows: list[dict[str, Any]]) -> list[int]:
    """When each epoch ended: start + the epochs' seconds so far (else the job's end, or now)."""
    start = _ms(job.result.get("started_at"))
    fallback = _ms(job.result.get("ended_at")) or int(time.time() * 1000)
    if start is None:
        return [fallback] * len(rows)
    stamps, elapsed = [], 0.0
    for row in rows:
        seconds = row.get("epoch_seconds")
        elapsed += seconds if isinstance(seconds, float) and seconds == seconds else 0.0
        stamps.append(start + int(elapsed * 1000))
    return stamps


def _last_step(client: Any, run_id: str) -> int:
    history = client.get_metric_history(run_id, "test_acc")
    return max((m.step for m in history), default=0)


def export_mlflow(jobs: Iterable[Job], report: Exported, *, tracking_uri: str | None) -> None:
    """Each job into the experiment of its sweep (see the module doc for kept/updated/new)."""
    from vitbn_sweep.tracking import mlflow_tracker as mt

    experiments: dict[tuple[str, str], tuple[Any, str]] = {}
    for job in jobs:
        logger = {"tracking_uri": tracking_uri, "experiment": job.identity.sweep}
        uri = mt.resolve_tracking_uri(logger, job.config)
        if (uri, job.identity.sweep) not in experiments:
            experiments[uri, job.identity.sweep] = mt.open_experiment(logger, job.config)
        client, exp_id = experiments[uri, job.identity.sweep]
        report.where = uri
        previous = mt.find_run(client, exp_id, job.identity)
        name = str(job.identity.job_dir)
        if previous is not None and previous.data.tags.get(mt.ENDED_TAG) == str(
            job.result.get("ended_at")
        ):
            report.kept.append(name)
            continue
        rows = job.rows()
        pairs = list(zip(rows, _epoch_stamps(job, rows), strict=True))
        if previous is not None:  # its epochs up to the last one logged are there already
            done = _last_step(client, previous.info.run_id)
            pairs = [(row, stamp) for row, stamp in pairs if row["epoch"] > done]
        run_id = mt.open_run(
            client,
            exp_id,
            job.config,
            identity=job.identity,
            extra_tags=[],
            previous=previous,
            start_ms=_ms(job.result.get("started_at")),
        )
        metrics = [m for row, stamp in pairs for m in mt.epoch_metrics(row, stamp)]
        mt.log_metrics(client, run_id, metrics)
        mt.end_run(client, run_id, job.result, end_ms=_ms(job.result.get("ended_at")))
        (report.updated if previous is not None else report.new).append(name)


# --- wandb --------------------------------------------------------------------------------


def _ledger(root: Path) -> dict[str, str]:
    """run id -> ``ended_at`` of the result it holds, for the runs exported under ``root``."""
    entries = store.read_lines(root / LEDGER)  # a line cut by a crash: that run goes again
    return {e["run_id"]: e["ended_at"] for e in entries if "run_id" in e and "ended_at" in e}


def _wandb_logger(job: Job, *, project: str | None, entity: str | None, mode: str) -> dict:
    """The ``logger`` config the job's run is written with: the options, else the job's own
    wandb logger (project, entity), else the defaults."""
    own = job.config.get("logger") or {}
    own = own if own.get("name") == "wandb" else {}
    return {
        "name": "wandb",
        "project": project or own.get("project") or DEFAULT_PROJECT,
        "entity": entity or own.get("entity"),
        "group": job.identity.sweep,
        "mode": mode,
        "tags": [],
        "quiet": True,
        "probe_timeout_s": own.get("probe_timeout_s", 5),
    }


def export_wandb(
    jobs: Iterable[Job],
    report: Exported,
    sweep_dir: Path,
    *,
    project: str | None,
    entity: str | None,
    mode: str,
) -> Path:
    """Each job into a wandb run of the sweep's group; returns the folder written."""
    from vitbn_sweep.tracking.wandb_tracker import WandbTracker, resolve_mode

    root = sweep_dir.resolve().parent / WANDB_EXPORT_DIR / sweep_dir.resolve().name
    done = _ledger(root)
    run_dir = root / time.strftime("%Y%m%d-%H%M%S")
    while run_dir.exists():  # two exports within a second
        run_dir = run_dir.with_name(run_dir.name + "+")
    for job in jobs:
        ended, job_dir = str(job.result.get("ended_at")), str(job.identity.job_dir)
        if done.get(job.identity.run_id) == ended:
            report.kept.append(job_dir)
            continue
        logger = _wandb_logger(job, project=project, entity=entity, mode=mode)
        tracker = WandbTracker(logger, job_dir=job.identity.job_dir, run_dir=run_dir)
        tracker.start(job.config)
        for row in job.rows():
            tracker.log_epoch(row)
        tracker.finish(job.result)
        (report.updated if job.identity.run_id in done else report.new).append(job_dir)
        entry = {"run_id": job.identity.run_id, "ended_at": ended, "job_dir": job_dir}
        # after the run is complete: an export cut short writes that run again
        store.append_line(root / LEDGER, {**entry, "run_dir": str(run_dir)})
    mode = resolve_mode(mode, os.environ)[0]  # WANDB_MODE wins, as in the tracker
    report.where = f"{mode}, {run_dir}" if report.new or report.updated else mode
    return run_dir


# --- command ------------------------------------------------------------------------------


def add_parser(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "export",
        help="log a sweep's finished jobs into MLflow or wandb, after the fact",
        description="Log every completed or diverged job of a sweep (config, per-epoch "
        "metrics, result) into a tracker, as logger=mlflow / logger=wandb would have during "
        "training. Running it again adds no duplicates.",
    )
    sub.add_argument("sweep", nargs="?", help="the sweep dir (default: the newest sweep)")
    sub.add_argument("--to", choices=TRACKERS, required=True, help="the tracker")
    sub.add_argument(
        "--tracking-uri",
        help="mlflow: the tracking URI (default: $MLFLOW_TRACKING_URI, else the sweep's "
        "local store <outputs>/mlflow/mlflow.db, which `make mlflow-ui SWEEP=...` opens)",
    )
    sub.add_argument(
        "--project", help="wandb: the project (default: the jobs' logger.project, else vitbn-sweep)"
    )
    sub.add_argument(
        "--entity", help="wandb: the entity (default: the jobs' logger.entity, else yours)"
    )
    sub.add_argument(
        "--mode",
        choices=WANDB_MODES,
        default="offline",
        help="wandb: offline (default: upload later with the printed `wandb sync`) or online; "
        "WANDB_MODE wins, as during training",
    )
    sub.set_defaults(handler=run)


def _mlflow_hint(sweep_dir: Path, uri: str) -> str:
    """How to browse the store: ``make mlflow-ui`` finds the sweep's local store itself."""
    from vitbn_sweep.tracking.mlflow_tracker import local_uri

    if uri == local_uri({"paths": {"outputs": str(sweep_dir.resolve().parent)}}):
        return f"browse: make mlflow-ui SWEEP={sweep_dir}"
    return f"browse: make mlflow-ui MLFLOW_URI={uri}"


def run(args: argparse.Namespace) -> int:
    try:
        sweep_dir = Path(args.sweep) if args.sweep else newest_sweep()
        jobs, report = sweep_jobs(sweep_dir)
        if args.to == "mlflow":
            export_mlflow(jobs, report, tracking_uri=args.tracking_uri)
            if report.where:
                report.hint = _mlflow_hint(sweep_dir, report.where)
        else:
            run_dir = export_wandb(
                jobs, report, sweep_dir, project=args.project, entity=args.entity, mode=args.mode
            )
            if (report.new or report.updated) and list(run_dir.glob("wandb/offline-run-*")):
                report.hint = f"upload these runs: wandb sync {run_dir}/wandb/offline-run-*"
    except ImportError as exc:  # the tracker's package is an extra
        raise AnalysisError(f"export --to {args.to}: {exc}") from exc
    print("\n".join(report.lines(str(sweep_dir), args.to)))
    return 0
