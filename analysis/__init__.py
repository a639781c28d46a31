"""Analysis of vitbn_sweep results: load, compare models by depth, write a report.

    records, stats = records_from_dirs(["outputs/grid_c"])
    tidy, summary = build_frames(records)
    result = analyze(records, stats, Settings(models=("vitbnffn", "vit")))
    result.critical  # one row per learning rate (and batch size...): the critical depth

CLI: ``python -m analysis report [SWEEP_DIR ...]`` (see ``python -m analysis report -h``).
"""

from analysis.critical import critical_depths, depth_differences, verdict
from analysis.errors import AnalysisError
from analysis.frames import build_frames
from analysis.inputs import load_results
from analysis.load import SUPPORTED_SCHEMA_VERSIONS, JobRecord, LoadStats, records_from_dirs
from analysis.scores import condition_columns, job_scores
from analysis.settings import Settings
from analysis.stability import lr_stability
from analysis.study import Analysis, analyze

__all__ = [
    "SUPPORTED_SCHEMA_VERSIONS",
    "Analysis",
    "AnalysisError",
    "JobRecord",
    "LoadStats",
    "Settings",
    "analyze",
    "build_frames",
    "condition_columns",
    "critical_depths",
    "depth_differences",
    "job_scores",
    "load_results",
    "lr_stability",
    "records_from_dirs",
    "verdict",
]
