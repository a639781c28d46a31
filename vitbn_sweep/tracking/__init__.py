"""Experiment trackers: ``logger`` config group picks one; the result files are written regardless.

A tracker sees a job start (with its resolved config), every finished epoch's
metrics row, and the job's end (with its result record, also on failure). A
tracker must never cost a training run: every call goes through ``Safe``,
which turns tracker errors into one warning each.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vitbn_sweep.choices import LOGGERS
from vitbn_sweep.tracking.run import Tracker

log = logging.getLogger(__name__)


class Safe(Tracker):
    """Wraps a tracker so that none of its errors reaches the training loop.

    Each failing method is reported once, as a warning. After a failed ``start`` the
    job is not tracked: ``log_epoch`` and ``finish`` are skipped until a ``start``
    succeeds (the warning says so).
    """

    def __init__(self, inner: Tracker) -> None:
        self.inner, self.warned = inner, set()
        self.started = False

    def _call(self, what: str, *args: Any) -> bool:
        try:
            getattr(self.inner, what)(*args)
            return True
        except Exception as exc:  # a tracker must never cost a run
            if what not in self.warned:
                self.warned.add(what)
                log.warning(
                    "%s.%s failed (%s: %s); %s, result files are written as usual",
                    type(self.inner).__name__,
                    what,
                    type(exc).__name__,
                    exc,
                    "this job is not tracked" if what == "start" else "training goes on",
                )
            return False

    def start(self, config: Mapping[str, Any]) -> None:
        self.started = self._call("start", config)

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        if self.started:
            self._call("log_epoch", row)

    def finish(self, record: Mapping[str, Any]) -> None:
        if self.started:
            self._call("finish", record)


def build_tracker(
    logger: Mapping[str, Any], *, job_dir: Path, side_by_side: bool = False
) -> Tracker:
    """The tracker named by ``logger.name``, wrapped in ``Safe``.

    wandb and mlflow are imported only by the tracker that uses them (``logger=none``
    imports neither). ``side_by_side``: other jobs' runs are open in this process at the
    same time (the members of a stacked group), so starting this one must not end them.
    """
    name = logger["name"]
    if name == "none":
        return Safe(Tracker())
    if name == "wandb":
        from vitbn_sweep.tracking.wandb_tracker import WandbTracker

        return Safe(WandbTracker(logger, job_dir=job_dir, side_by_side=side_by_side))
    if name == "mlflow":
        from vitbn_sweep.tracking.mlflow_tracker import MlflowTracker

        return Safe(MlflowTracker(logger, job_dir=job_dir))
    raise ValueError(f"logger.name must be one of {', '.join(LOGGERS)}, got {name!r}")
