"""A job's lifecycle in its directory, one for a job trained alone (``train.run``) and for a
member of a stacked group (``stacked_train``)::

    open_job   plan it (``resume.plan``: skip, continue, start), leave it to another live
               run that holds it, else claim it; make its result record and tracker run
    end_epoch  the checkpoint, then the metrics row (never ahead of the checkpoint), then
               the tracker
    finish     result.json (last), the claim released, a completed job's checkpoint
               dropped unless kept, the tracker run closed
    cut        interrupted (Ctrl-C, SIGTERM): no result.json, the claim released, so the
               same command continues it from its last checkpoint

``open_jobs`` and ``training`` are these steps for the jobs one call trains (one alone, or
the members of a stacked group): the loop that trains them ends each that finishes or
diverges, ``training`` ends those it leaves (cut or failed).

Log lines about a job carry its directory (``JOB_LOG_KEY``), so a launcher that trains
several jobs in one process can write each job's lines into its own log (``JobLogFilter``).
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from vitbn_sweep import results, store
from vitbn_sweep.identity import job_identity, job_name
from vitbn_sweep.store import claims, resume
from vitbn_sweep.tracking import build_tracker

log = logging.getLogger(__name__)
JOB_LOG_KEY = "vitbn_member"  # LogRecord attribute: the job dir a log line is about
Outcome = dict[str, Any] | Exception  # a job's result record, or what failed it


class JobLogFilter(logging.Filter):
    """Passes the log lines about one job (by its job directory)."""

    def __init__(self, job_dir: Path) -> None:
        super().__init__()
        self.job_dir = str(job_dir)

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, JOB_LOG_KEY, None) == self.job_dir


def summarize(rows: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(final, best) of the metrics rows: the last epoch, and the epoch of best test_acc."""
    if not rows:
        return None, None
    best = max(rows, key=lambda r: (r["test_acc"], -r["epoch"]))
    return dict(rows[-1]), {
        "test_acc": best["test_acc"],
        "epoch": best["epoch"],
        "test_acc_clean": max(r["test_acc_clean"] for r in rows),
    }


def epoch_line(row: Mapping[str, Any], epochs: int) -> str:
    """The per-epoch log line of a metrics row."""
    return (
        f"epoch {row['epoch']}/{epochs} train_loss {row['train_loss']:.4f} "
        f"train_acc {row['train_acc']:.4f} test_acc {row['test_acc']:.4f} "
        f"clean {row['test_acc_clean']:.4f} | {row['epoch_seconds']:.1f}s "
        f"{row['samples_per_s']:.0f} samples/s"
    )


class Job:
    """A claimed job of ``config`` in ``job_dir``: its rows so far, result record, tracker run.

    ``checkpoint``: the one it continues from ({} to start); ``owner``: its claim;
    ``outcome``: None until it ends, then its result record or what failed it.
    """

    def __init__(
        self,
        config: dict[str, Any],
        job_dir: Path,
        device: torch.device,
        *,
        checkpoint: dict[str, Any],
        owner: dict[str, Any],
        side_by_side: bool = False,
    ) -> None:
        self.config, self.job_dir, self.checkpoint, self.owner = config, job_dir, checkpoint, owner
        self.rows: list[dict[str, Any]] = list(checkpoint.get("rows", []))
        self.t0 = time.perf_counter() - checkpoint.get("seconds", 0.0)
        self.record: dict[str, Any] = {
            "schema_version": store.SCHEMA_VERSION,
            "status": None,
            "config": config,
            "final": None,
            "best": None,
            "epochs_run": 0,
            "total_seconds": None,
            "diverged_at": None,
            "error": None,
            "resumed_from_epoch": checkpoint.get("epoch"),
            "versions": results.versions(),
            "host": results.host(device),
            "where": results.where(),
            "device": str(device),
            "threads": torch.get_num_threads(),
            "started_at": checkpoint.get("started_at", results.now()),
            "ended_at": None,
        }
        self.tracker = build_tracker(config["logger"], job_dir=job_dir, side_by_side=side_by_side)
        self.outcome: Outcome | None = None

    @property
    def name(self) -> str:
        return job_name(self.config)

    @property
    def epoch(self) -> int:
        """The epoch it trains now (1-based)."""
        return len(self.rows) + 1

    def log(self, level: int, msg: str, *args: Any) -> None:
        log.log(level, "%s: " + msg, self.name, *args, extra={JOB_LOG_KEY: str(self.job_dir)})

    def start(self) -> None:
        self.job_dir.mkdir(parents=True, exist_ok=True)
        self.tracker.start(self.config)

    def end_epoch(
        self,
        row: dict[str, Any],
        state: Callable[[], tuple[dict[str, Any], dict[str, Any]]],
    ) -> None:
        """Record a finished epoch: the checkpoint (``state()`` gives the model's and the
        optimizer's state dicts), then ``row`` into metrics.csv, then the tracker. The job
        counts the epoch only once both are written, so a write that fails (a full disk)
        leaves a failed result whose ``epochs_run`` matches the rows on disk."""
        rows = [*self.rows, row]
        if self.config["resume"]["checkpoint"]:
            model_state, optimizer_state = state()
            resume.save_checkpoint(
                self.job_dir,
                {
                    "identity": job_identity(self.config),
                    "epoch": row["epoch"],
                    "rows": rows,
                    "model": model_state,
                    "optimizer": optimizer_state,
                    "seconds": time.perf_counter() - self.t0,
                    "started_at": self.record["started_at"],
                },
            )
        store.write_metrics(self.job_dir, rows)
        self.rows = rows
        self.tracker.log_epoch(row)
        self.log(logging.INFO, "%s", epoch_line(row, self.config["trainer"]["epochs"]))

    def finish(self, status: str) -> dict[str, Any]:
        """End the job with ``status``: result.json, the claim released, a completed job's
        checkpoint dropped (unless kept), the tracker run closed.

        A result.json that cannot be written (a full disk) raises ``store.WriteError``: the
        job then counts as failed in its sweep's summary, and a rerun continues it."""
        self.record["final"], self.record["best"] = summarize(self.rows)
        self.record.update(
            status=status,
            epochs_run=len(self.rows),
            ended_at=results.now(),
            total_seconds=time.perf_counter() - self.t0,
        )
        try:
            store.write_result(self.job_dir, self.record)
        finally:
            claims.release(self.job_dir, self.owner)
        if status == store.COMPLETED and not self.config["resume"]["keep_checkpoint"]:
            resume.drop_checkpoint(self.job_dir)
        self.tracker.finish(self.record)
        self.outcome = self.record
        return self.record

    def diverged(self, epoch: int, step: int) -> dict[str, Any]:
        self.log(logging.WARNING, "train loss not finite at epoch %d, step %d; recorded as "
                 "diverged", epoch, step)  # fmt: skip
        self.record["diverged_at"] = {"epoch": epoch, "step": step}
        return self.finish(store.DIVERGED)

    def fail(self, exc: Exception) -> None:
        """End the job as failed by ``exc`` (its message names a file a write failed on);
        ``exc`` becomes its outcome, or the ``store.WriteError`` of a result.json that
        cannot be written (the sweep then says so)."""
        self.record["error"] = {
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": traceback.format_exc(),
        }
        try:
            self.finish(store.FAILED)
        except store.WriteError as write:
            self.outcome = write
        else:
            self.outcome = exc

    def cut(self) -> None:
        """Interrupted: no result.json, the claim released; a rerun continues the job."""
        claims.release(self.job_dir, self.owner)


def open_job(
    config: dict[str, Any],
    job_dir: Path,
    device: torch.device,
    *,
    token: str,
    liveness: claims.Liveness | None = None,
    kind: type[Job] = Job,
) -> Job | dict[str, Any]:
    """The job to train in ``job_dir``, claimed (a ``kind``), or the record of a job not to
    train here: ended and skipped, or held by another live run."""
    name, about = job_name(config), {JOB_LOG_KEY: str(job_dir)}
    todo = resume.plan(job_dir, config)
    if todo.action == "skip":
        log.info("%s: already %s in %s; skipped", name, todo.previous["status"], job_dir,
                 extra=about)  # fmt: skip
        return todo.previous
    other = claims.foreign_live_owner(job_dir, token, liveness)
    if other is not None:
        log.warning("%s: %s is training %s; not training it twice", name, other, job_dir,
                    extra=about)  # fmt: skip
        return {"status": "claimed", "owner": other}
    owner = claims.this_owner(token)
    claims.claim(job_dir, owner)
    return kind(config, job_dir, device, checkpoint=todo.checkpoint or {}, owner=owner)


def open_jobs(
    configs: Sequence[dict[str, Any]],
    job_dirs: Sequence[Path],
    device: torch.device,
    *,
    kind: type[Job] = Job,
) -> list[Job | dict[str, Any]]:
    """``open_job`` for each job one call trains, after the process settings of their
    trainer config (torch threads, before the records, which say how many) and after every
    plan is checked against conf/ (edited since the plan?), so that none is claimed when
    one is refused."""
    trainer = configs[0]["trainer"]
    if trainer["threads"] is not None:
        torch.set_num_threads(trainer["threads"])
    if device.type == "cpu":
        torch.set_flush_denormal(trainer["flush_denormal"])
    token, liveness = claims.job_token(), claims.Liveness()
    for config, job_dir in zip(configs, job_dirs, strict=True):
        claims.check_planned(job_dir, token, job_identity(config))
    return [
        open_job(config, job_dir, device, token=token, liveness=liveness, kind=kind)
        for config, job_dir in zip(configs, job_dirs, strict=True)
    ]


@contextlib.contextmanager
def training(jobs: Sequence[Job]) -> Iterator[None]:
    """Start ``jobs``, then end each one the block leaves unended: an interrupt (Ctrl-C, a
    scheduler's signal) cuts it, so the same command continues it from its checkpoint, and
    propagates; an exception fails it (``Job.fail``) and becomes its outcome."""
    try:
        for job in jobs:
            job.start()
        yield
    except (KeyboardInterrupt, SystemExit):
        for job in jobs:
            if job.outcome is None:
                job.cut()
        raise
    except Exception as exc:
        for job in jobs:
            if job.outcome is None:  # not ended just before (completed or diverged)
                job.fail(exc)
