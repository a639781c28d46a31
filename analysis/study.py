"""From loaded records to every number the report shows: one ``analyze`` call."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from analysis.critical import critical_depths, depth_differences
from analysis.frames import build_frames
from analysis.load import STATUSES, JobRecord, LoadStats
from analysis.scores import condition_columns, job_scores
from analysis.settings import Settings
from analysis.stability import lr_stability
from analysis.sweep import SweepInfo


@dataclass
class Analysis:
    """The frames, the comparison and its tables, and what the load left out."""

    records: list[JobRecord]
    stats: LoadStats
    settings: Settings
    tidy: pd.DataFrame
    summary: pd.DataFrame
    conditions: list[str]
    scores: pd.DataFrame
    pair: tuple[str, str] | None
    diffs: pd.DataFrame
    critical: pd.DataFrame
    stability: pd.DataFrame
    sweeps: list[SweepInfo] = field(default_factory=list)

    def counts(self) -> dict[str, int | None]:
        """Jobs by status (duplicates apart), incomplete ones, and not started (if known)."""
        jobs = self.summary[~self.summary["duplicate"]]
        counts: dict[str, int | None] = {s: int((jobs["status"] == s).sum()) for s in STATUSES}
        counts["duplicate"] = int(self.summary["duplicate"].sum())
        counts["incomplete"] = self.stats.n_incomplete
        expected = [s.expected for s in self.sweeps]
        counts["not started"] = None
        if expected and all(e is not None for e in expected):
            seen = len(self.summary) + self.stats.n_incomplete
            counts["not started"] = max(sum(expected) - seen, 0)
        return counts


def analyze(
    records: list[JobRecord],
    stats: LoadStats,
    settings: Settings,
    sweeps: list[SweepInfo] | None = None,
) -> Analysis:
    """Frames, per-job scores, per-depth differences, critical depths and lr stability."""
    tidy, summary = build_frames(records)
    conditions = condition_columns(summary)
    scores = job_scores(tidy, summary, settings)
    pair = settings.pair(summary["model"].unique())
    diffs = depth_differences(scores, pair, settings) if pair else pd.DataFrame()
    critical = critical_depths(diffs) if not diffs.empty else pd.DataFrame()
    return Analysis(
        records=records,
        stats=stats,
        settings=settings,
        tidy=tidy,
        summary=summary,
        conditions=conditions,
        scores=scores,
        pair=pair,
        diffs=diffs,
        critical=critical,
        stability=lr_stability(scores, settings),
        sweeps=sweeps or [],
    )
