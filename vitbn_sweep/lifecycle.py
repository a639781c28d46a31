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

Log lines about a job carry its directory (``JOB_LOG_KEY``), so a launcher that trains
several jobs in one process can write each job's lines into its own log (``JobLogFilter``).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from vitbn_sweep import results, store
from vitbn_sweep.identity import job_identity, job_name
from vitbn_sweep.store import claims, resume
from vitbn_sweep.tracking import build_tracker

log = logging.getLogger(__name__)
JOB_LOG_KEY = "vitbn_member"  # LogRecord attribute: the job dir a log line is about


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

    ``checkpoint``: the one it continues from ({} to start); ``owner``: its claim.
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
            (self.job_dir / store.CHECKPOINT_FILE).unlink(missing_ok=True)
        self.tracker.finish(self.record)
        return self.record

    def diverged(self, epoch: int, step: int) -> dict[str, Any]:
        self.log(logging.WARNING, "train loss not finite at epoch %d, step %d; recorded as "
                 "diverged", epoch, step)  # fmt: skip
        self.record["diverged_at"] = {"epoch": epoch, "step": step}
        return self.finish(store.DIVERGED)

    def fail(self, exc: BaseException) -> dict[str, Any]:
        """End the job as failed by ``exc`` (its message names a file a write failed on)."""
        self.record["error"] = {
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": traceback.format_exc(),
        }
        return self.finish(store.FAILED)

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
    **extra: Any,
) -> Job | dict[str, Any]:
    """The job to train in ``job_dir``, claimed (a ``kind``, made with ``extra``), or the
    record of a job not to train here: ended and skipped, or held by another live run."""
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
    return kind(config, job_dir, device, checkpoint=todo.checkpoint or {}, owner=owner, **extra)
