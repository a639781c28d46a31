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

log = logging.getLogger(__name__)


class Tracker:
    """The no-op tracker (``logger=none``) and the interface of every tracker."""

    def start(self, config: Mapping[str, Any]) -> None:
        """The job starts (or resumes) with this resolved config."""

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        """One finished epoch's metrics row (``results.METRIC_COLUMNS``)."""

    def finish(self, record: Mapping[str, Any]) -> None:
        """The job ended; ``record`` is its ``result.json`` content."""


class Safe(Tracker):
    """Wraps a tracker so that none of its errors reaches the training loop."""

    def __init__(self, inner: Tracker) -> None:
        self.inner, self.warned = inner, set()

    def _call(self, what: str, *args: Any) -> None:
        try:
            getattr(self.inner, what)(*args)
        except Exception as exc:  # a tracker must never cost a run
            if what not in self.warned:
                self.warned.add(what)
                log.warning(
                    "%s.%s failed (%s: %s); training goes on, result files are written as usual",
                    type(self.inner).__name__,
                    what,
                    type(exc).__name__,
                    exc,
                )

    def start(self, config: Mapping[str, Any]) -> None:
        self._call("start", config)

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        self._call("log_epoch", row)

    def finish(self, record: Mapping[str, Any]) -> None:
        self._call("finish", record)


def build_tracker(logger: Mapping[str, Any], *, job_dir: Path) -> Tracker:
    """The tracker named by ``logger.name``, wrapped in ``Safe``."""
    name = logger["name"]
    if name == "none":
        return Safe(Tracker())
    raise ValueError(f"logger.name must be one of none, got {name!r}")
