"""Analysis of vitbn_sweep results, in pipeline order:

    load      job dirs (or trackers, through ``sources``) -> ``JobRecord``s; sweeps' commands
    frames    records -> tidy (job x epoch), summary (job) and scores (one number per job)
    intervals t intervals of a difference over seeds (paired, pooled, Welch)
    compare   scores -> cells (win / lose / unresolved / no data; shown as win, win beyond
              the margin, no win, lose, ...) -> critical depths
    stability the accuracy a higher lr costs each model, and the baseline's cost minus the
              candidate's (does a higher lr hurt the baseline more?)
    resolve   more seeds where a critical depth is unresolved (``make resolve``), and
              where an lr gap is (``make resolve GAP=1``); cost: a round's job time,
              priced at the sweep's own job times
    figures, render, report: the report dir; cli: ``python -m analysis``

The study's own pages (``make publish``: findings, the article beside the study, rank
cross-checks, the seeding disclosure, redaction) and the simulations that check these
rules against a known truth (``make simulate``) are not installed: studies/ in the
repository.

    records, stats = records_from_dirs(["outputs/grid_c"])
    result = analyze(records, stats, Settings(models=("vitbnffn", "vit")))
    result.critical  # one row per learning rate (and batch size...): the critical depth
    result.diffs     # one row per cell: depth, diff, ci_low, ci_high, method, state
    result.stability_gap  # per depth: points the baseline loses more at the higher lr

CLI: ``python -m analysis report [SWEEP_DIR ...]`` (see ``python -m analysis report -h``).
"""

from analysis.compare import Analysis, analyze
from analysis.frames import build_frames
from analysis.load import load_results, records_from_dirs
from analysis.records import AnalysisError, JobRecord
from analysis.settings import Settings

# What a user needs to get from a sweep to its answer; the steps' own functions
# (``compare.depth_differences``, ``stability.stability_gap``, ``intervals.diff_interval``, ...)
# are imported from their modules.
__all__ = [
    "Analysis",
    "AnalysisError",
    "JobRecord",
    "Settings",
    "analyze",
    "build_frames",
    "load_results",
    "records_from_dirs",
]
