"""Compare two models depth by depth, and read off the critical depth: one ``analyze`` call.

Per condition (learning rate, batch size, ...) and swept depth, a *cell*: the difference
candidate minus baseline of the mean score over seeds, with its t interval
(``analysis.intervals``: paired by seed when both models ran the same seeds), and one state:

- **win**: the estimate is above the margin and the interval's lower end is above 0
  (``win_rule``: the words every page prints);
- **lose**: the interval's upper end is below the margin: the candidate cannot win here.
  Pages show it as *no win* (``NO_WIN``) where the interval still reaches 0 or above (the
  candidate may be ahead, short of the rule), and as *lose* only where the interval's
  upper end is below 0 (the candidate clearly behind): ``cell_label``;
- **unresolved**: neither (with one seed per model there is no interval: always
  unresolved); more seeds decide it, unless the true difference is exactly the margin;
- **no data**: a model without a scored seed.

Beside a win, pages say *beyond the margin* where the interval's lower end is above the
margin too: the data then show more than the margin, not only a mean above it.

The critical depth is the smallest swept depth from which every swept depth is a win.
Each win is a one-sided test at level 2.5 % (the lower end of a two-sided 95 % interval
above 0); requiring all of them is an intersection-union test, whose level is that of each
test: no multiplicity correction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.frames import build_frames, condition_columns, groups, job_scores, seed_interval
from analysis.load import SweepInfo
from analysis.records import JobRecord, LoadStats
from analysis.render import in_points
from analysis.settings import Settings
from analysis.spread import seed_spread
from analysis.stability import lr_stability, stability_gap
from vitbn_sweep.store import STATUSES

WIN, LOSE, UNRESOLVED, NO_DATA = "win", "lose", "unresolved", "no data"
STATES = (WIN, LOSE, UNRESOLVED, NO_DATA)
WINS_FROM_SMALLEST = "wins from the smallest depth swept"
NEVER = "never within the swept range"
UNDECIDED = "unresolved"
NOT_ENOUGH = "not enough data"
MIN_DEPTH = 1  # no model has fewer layers: a critical depth is never below it
UNKNOWN = "unknown"  # the critical depth's text without any data
CELL_COLUMNS = ("candidate", "baseline", "depth", "epoch", "n_a", "n_b", "mean_a", "mean_b")
CELL_COLUMNS += ("diff", "ci_low", "ci_high", "method", "state", "label", "note")
NO_WIN = "no win"  # the label of a lose whose interval reaches 0: short of the rule
BEYOND = "win beyond the margin"  # the label of a win whose interval clears the margin


def win_rule(margin: float, level: float) -> str:
    """The rule a cell wins by, in the words every page, report and CLI prints."""
    return (
        f"wins: mean above the margin ({in_points(margin)}) and {level * 100:g} % interval above 0"
    )


def state_legend(margin: float, level: float) -> str:
    """Every cell label in words, the rule first (``cell_label``)."""
    return (
        f"{win_rule(margin, level)}; {BEYOND}: its interval's lower end is above the margin "
        f"too; {NO_WIN}: the interval's upper end is below the margin but not below 0 (the "
        f"candidate may be ahead, short of the rule); {LOSE}: the interval's upper end is "
        f"below 0 (the candidate clearly behind); {UNRESOLVED}: neither, more seeds decide it"
    )


def cell_label(state: str, low: float, high: float, margin: float) -> str:
    """What a page shows for a cell's ``state``: a lose whose interval reaches 0 is *no
    win*, a win whose interval clears the margin is a *win beyond the margin*."""
    if state == LOSE and not high < 0:
        return NO_WIN
    if state == WIN and low > margin:
        return BEYOND
    return state


def cell_state(
    n_a: int, n_b: int, diff: float, low: float, high: float, margin: float
) -> tuple[str, str]:
    """(state, note) of one cell from its seed counts, estimate and interval."""
    if n_a == 0 or n_b == 0:
        return NO_DATA, "no scored seed for " + ("either model" if n_a == n_b else "one model")
    if np.isnan(low):
        return UNRESOLVED, "1 seed: no interval"
    if low > 0 and diff > margin:
        return WIN, ""
    if high < margin:
        return LOSE, "interval below the margin"
    if not diff > margin:
        return UNRESOLVED, "estimate not above the margin, interval reaches it"
    return UNRESOLVED, "interval reaches 0"


def depth_differences(
    scores: pd.DataFrame, pair: tuple[str, str], settings: Settings
) -> pd.DataFrame:
    """One row per cell (condition and swept depth): seeds, means, difference, interval, state.

    The swept depths of a condition are every depth at which either model has a job.
    """
    candidate, baseline = pair
    conditions = condition_columns(scores)
    scores = scores[scores["model"].isin(pair)]
    rows = []
    for key, group in groups(scores, conditions):
        for depth in sorted(group["depth"].unique()):
            at = group[(group["depth"] == depth) & group["score"].notna()]
            a, b = at[at["model"] == candidate], at[at["model"] == baseline]
            interval = seed_interval(a, b, settings.level)
            state, note = cell_state(
                len(a), len(b), interval.diff, interval.low, interval.high, settings.margin
            )
            rows.append(
                {
                    **dict(zip(conditions, key, strict=True)),
                    "candidate": candidate,
                    "baseline": baseline,
                    "depth": int(depth),
                    "epoch": group["epoch"].max(),
                    "n_a": len(a),
                    "n_b": len(b),
                    "mean_a": a["score"].mean() if len(a) else np.nan,
                    "mean_b": b["score"].mean() if len(b) else np.nan,
                    "diff": interval.diff,
                    "ci_low": interval.low,
                    "ci_high": interval.high,
                    "method": interval.method,
                    "state": state,
                    "label": cell_label(state, interval.low, interval.high, settings.margin),
                    "note": note,
                }
            )
    return pd.DataFrame(rows, columns=[*conditions, *CELL_COLUMNS])


# --- the verdict -------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """The critical depth of one condition, as far as the cells tell.

    ``low``/``high`` bound it (``high`` None: above the largest swept depth, no bound);
    ``text`` shows it (``5``, ``<= 4``, ``> 7``, ``3 or 4``, ``3 to > 7``); ``open_depths``
    are the cells (unresolved or without data) whose outcome can still move it.
    """

    low: int
    high: int | None
    text: str
    verdict: str
    detail: str
    open_depths: tuple[int, ...] = field(default=())

    @property
    def resolved(self) -> bool:
        return not self.open_depths and self.verdict != NOT_ENOUGH


def _bounds(depths: Sequence[int], top_non_win: int) -> tuple[int, int | None]:
    """Where the critical depth lies when the largest non-winning cell is ``top_non_win``
    (an index into ``depths``; -1 when every cell wins)."""
    if top_non_win == len(depths) - 1:
        return depths[-1] + 1, None
    low = MIN_DEPTH if top_non_win < 0 else depths[top_non_win] + 1
    return low, depths[top_non_win + 1]


def _text(depths: Sequence[int], top_non_win: int) -> str:
    low, high = _bounds(depths, top_non_win)
    if high is None:
        return f"> {depths[-1]}"
    if low == high:
        return str(high)
    return f"<= {high}" if low == MIN_DEPTH else f"{low}-{high}"


def verdict(depths: Sequence[int], states: Sequence[str]) -> Verdict:
    """The ``Verdict`` from per-depth states, depths ascending.

    The critical depth follows from the largest depth that does not win; an unresolved or
    empty cell above the largest lost one could be either, so the answer is bounded by
    both cases: every open cell a win (``low``) or every one a loss (``high``).
    """
    if not depths or all(s == NO_DATA for s in states):
        detail = "no depth has scored seeds for both models"
        return Verdict(MIN_DEPTH, None, UNKNOWN, NOT_ENOUGH, detail)
    lost = max((i for i, s in enumerate(states) if s == LOSE), default=-1)
    open_ = [i for i, s in enumerate(states) if i > lost and s in (UNRESOLVED, NO_DATA)]
    low, _ = _bounds(depths, lost)
    _, high = _bounds(depths, max([lost, *open_]))
    text = _text(depths, lost)
    if open_:  # two outcomes with one open cell, a range with more
        text += (" or " if len(open_) == 1 else " to ") + _text(depths, open_[-1])
    open_depths = tuple(depths[i] for i in open_)
    if open_:
        empty = [depths[i] for i in open_ if states[i] == NO_DATA]
        listed = ", ".join(map(str, open_depths))
        if empty:
            detail = f"no scored seeds for both models at depth {', '.join(map(str, empty))}"
            return Verdict(low, high, text, NOT_ENOUGH, detail, open_depths)
        depth = "depths" if len(open_depths) > 1 else "depth"
        detail = f"unresolved at {depth} {listed}: more seeds decide it"
        return Verdict(low, high, text, UNDECIDED, detail, open_depths)
    if lost == len(depths) - 1:
        detail = f"does not win at depth {depths[-1]}, the largest swept"
        return Verdict(low, high, text, NEVER, detail)
    if lost < 0:
        return Verdict(low, high, text, WINS_FROM_SMALLEST, f"wins at every depth from {high}")
    detail = f"does not win at depth {depths[lost]}"
    return Verdict(low, high, text, f"wins from depth {high}", detail)


def _seed_range(group: pd.DataFrame) -> str:
    """Seeds per model and depth: ``3``, or ``1-3`` when they differ."""
    counts = pd.concat([group["n_a"], group["n_b"]]).astype(int)
    low, high = counts.min(), counts.max()
    return str(low) if low == high else f"{low}-{high}"


def critical_depths(diffs: pd.DataFrame) -> pd.DataFrame:
    """One row per condition: the critical depth (text and bounds) and its verdict."""
    conditions = [c for c in diffs.columns if c not in CELL_COLUMNS]
    rows = []
    for key, group in groups(diffs, conditions):
        group = group.sort_values("depth")
        depths = group["depth"].astype(int).tolist()
        found = verdict(depths, group["state"].tolist())
        rows.append(
            {
                **dict(zip(conditions, key, strict=True)),
                "candidate": group["candidate"].iloc[0],
                "baseline": group["baseline"].iloc[0],
                "depths": ",".join(map(str, depths)),
                "seeds": _seed_range(group),
                "epoch": group["epoch"].max(),
                "critical_depth": found.text,
                "critical_depth_low": found.low,
                "critical_depth_high": found.high,
                "verdict": found.verdict,
                "detail": found.detail,
                "open_depths": ",".join(map(str, found.open_depths)),
            }
        )
    table = pd.DataFrame(rows)
    if not table.empty:
        for column in ("critical_depth_low", "critical_depth_high"):
            table[column] = table[column].astype("Int64")
    return table


# --- everything at once ------------------------------------------------------------------


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
    stability_gap: pd.DataFrame  # the baseline's lr loss minus the candidate's, per depth
    spread: pd.DataFrame  # per model and depth: the seeds' scores, sd, and whether wide
    sweeps: list[SweepInfo] = field(default_factory=list)

    @property
    def jobs(self) -> pd.DataFrame:
        """The summary's rows but duplicates: each job once."""
        return self.summary[~self.summary["duplicate"]]

    def counts(self) -> dict[str, int | None]:
        """Jobs by status (duplicates apart), incomplete ones, and not started (if known):
        planned by any command into the sweep dir and without a job dir yet."""
        jobs = self.jobs
        counts: dict[str, int | None] = {s: int((jobs["status"] == s).sum()) for s in STATUSES}
        counts["duplicate"] = int(self.summary["duplicate"].sum())
        counts["incomplete"] = self.stats.n_incomplete
        counts["not started"] = None
        if self.sweeps and all(s.not_started is not None for s in self.sweeps):
            counts["not started"] = sum(s.not_started or 0 for s in self.sweeps)
        elif self.sweeps and all(s.expected is not None for s in self.sweeps):
            seen = len(self.summary) + self.stats.n_incomplete  # an old sweep: no grid.json
            counts["not started"] = max(sum(s.expected or 0 for s in self.sweeps) - seen, 0)
        return counts


def analyze(
    records: list[JobRecord],
    stats: LoadStats,
    settings: Settings,
    sweeps: list[SweepInfo] | None = None,
) -> Analysis:
    """Frames, per-job scores, per-depth cells, critical depths, lr stability and its gap,
    and the seeds' spread."""
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
        stability_gap=stability_gap(scores, pair, settings) if pair else pd.DataFrame(),
        spread=seed_spread(scores, settings),
        sweeps=sweeps or [],
    )
