"""The published study: which sweeps it holds, and each one analysed.

``analyse_study`` is what ``studies.publish`` writes up and what ``studies.findings``
and ``studies.article`` read; it lives apart from all three so that their imports run
one way (publish -> article -> findings -> study).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from analysis import render as tables
from analysis.compare import Analysis, analyze
from analysis.load import SweepInfo, load_results
from analysis.records import AnalysisError
from analysis.settings import Settings
from vitbn_sweep.grid import grid_size

# (sweep name, (candidate, baseline), what it asks)
STUDY = (
    ("article_full", ("vitbnffn", "vit"), "ViTBNFFN vs ViT, depths 1-7, lr 0.003 and 0.005"),
    ("warmup", ("dnnbn", "dnn"), "warm-up: DNN-BN vs DNN (depth 3), lr 0.01 and 0.1"),
)


@dataclass
class Published:
    """One sweep of the study, analysed."""

    name: str
    question: str
    analysis: Analysis


def analyse_study(results: Path, settings: Settings | None = None) -> list[Published]:
    """Both sweeps of the study under ``results``, analysed with the default settings."""
    out = []
    for name, pair, question in STUDY:
        sweep = results / name
        if not sweep.is_dir():
            raise AnalysisError(f"{sweep}: no such sweep dir (the study needs {name})")
        records, stats, sweeps = load_results("files", [str(sweep)])
        # The study's grid is the experiment's (its sweeper params), whatever subset of it
        # (trainer.seed=0 first, say) the latest command ran, or more where commands added
        # jobs to it (make resolve's seeds): what every command planned (grid.json).
        sweeps = [replace(s, expected=_study_size(s)) for s in sweeps]
        base = settings or Settings()
        analysis = analyze(records, stats, replace(base, models=pair), sweeps)
        out.append(Published(name, question, analysis))
    return out


def cell_name(key: tuple, conditions: list[str]) -> str:
    """``lr 0.003 depth 6``: a cell (its conditions and depth, ``key``) by lr, the study's
    one varying condition besides depth, and depth."""
    named = dict(zip([*conditions, "depth"], key, strict=True))
    lr = f"lr {tables.plain(named['lr'])} " if "lr" in named else ""
    return f"{lr}depth {tables.plain(named['depth'])}"


def _study_size(sweep: SweepInfo) -> int | None:
    grid = grid_size([f"{k}={v}" for k, v in sweep.params.items()])
    return grid if grid is None or sweep.planned is None else max(grid, sweep.planned)
