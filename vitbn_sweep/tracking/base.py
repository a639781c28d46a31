"""The interface every tracker implements, apart from the factory (``build_tracker`` in
the package's ``__init__``) so that imports run one way: the factory imports the
trackers, and they import this."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Tracker:
    """The no-op tracker (``logger=none``) and the interface of every tracker."""

    def start(self, config: Mapping[str, Any]) -> None:
        """The job starts (or resumes) with this resolved config."""

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        """One finished epoch's metrics row (``store.METRIC_COLUMNS``)."""

    def finish(self, record: Mapping[str, Any]) -> None:
        """The job ended; ``record`` is its ``result.json`` content."""
