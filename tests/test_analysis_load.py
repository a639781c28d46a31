"""Loading job dirs into records and frames: counts, duplicates, schema checks."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from analysis import AnalysisError, JobRecord, build_frames, records_from_dirs
from analysis.load import find_sweeps, newest_sweep, sweep_info
from tests.analysis_synth import write_grid, write_job
from vitbn_sweep.grid import grid, grid_size
from vitbn_sweep.store import METRIC_COLUMNS, SUPPORTED_SCHEMA_VERSIONS


def test_reader_supports_the_writer_schema():
    from vitbn_sweep.store import METRIC_COLUMNS as WRITTEN
    from vitbn_sweep.store import SCHEMA_VERSION

    assert SCHEMA_VERSION in SUPPORTED_SCHEMA_VERSIONS
    assert tuple(WRITTEN) == METRIC_COLUMNS


def test_tidy_and_summary_frames(tmp_path):
    write_grid(tmp_path, {1: 0.0, 2: 0.05}, seeds=2, epochs=3)
    (tmp_path / "report").mkdir()  # an earlier report: never searched
    write_job(tmp_path / "report", "vit", 9, 0, [0.1])
    records, stats = records_from_dirs([tmp_path])
    tidy, summary = build_frames(records)
    assert stats.results == len(records) == 8 and stats.n_incomplete == 0
    assert len(tidy) == 8 * 3 and len(summary) == 8
    for column in (
        "model",
        "depth",
        "lr",
        "batch_size",
        "seed",
        "epochs",
        "pipeline",
        "train_size",
        "test_size",
        *METRIC_COLUMNS,
    ):
        assert column in tidy, column
    for column in ("status", "final_test_acc", "best_test_acc", "epochs_run", "total_seconds"):
        assert column in summary, column
    assert set(summary["depth"]) == {1, 2} and set(summary["model"]) == {"vit", "vitbnffn"}
    # Keys that do not change the maths (data.root, trainer.device, ...) never show up.
    assert not [c for c in tidy if "root" in c or "device" in c]
    # A config value that differs between models appears under its dotted name.
    assert "cfg.model.norms.ffn_hidden" in summary
    # Job names are short: relative to the dir that holds them all.
    assert summary["job"].str.startswith("model=").all()


def test_incomplete_jobs_are_counted_not_loaded(tmp_path):
    write_job(tmp_path, "vit", 1, 0, [0.5, 0.6])
    write_job(tmp_path, "vit", 1, 1, [0.5], result=False)
    (tmp_path / "model=vit,seed=2" / ".hydra").mkdir(parents=True)
    records, stats = records_from_dirs([tmp_path])
    assert len(records) == 1
    assert stats.n_incomplete == 2


def test_duplicates_keep_the_latest(tmp_path):
    write_job(tmp_path, "vit", 1, 0, [0.5], ended_at="2026-01-01T00:00:00", name="a")
    write_job(tmp_path, "vit", 1, 0, [0.7], ended_at="2026-01-02T00:00:00", name="b")
    write_job(tmp_path, "vit", 1, 1, [0.6], name="c")
    _, summary = build_frames(records_from_dirs([tmp_path])[0])
    flagged = summary.set_index("job")["duplicate"]
    assert flagged.to_dict() == {"a": True, "b": False, "c": False}


def test_no_results_is_an_error(tmp_path):
    write_job(tmp_path, "vit", 1, 0, [0.5], result=False)
    with pytest.raises(AnalysisError, match="no result.json found.*1 job dirs"):
        records_from_dirs([tmp_path])
    with pytest.raises(AnalysisError, match="no such directory"):
        records_from_dirs([tmp_path / "nope"])


@pytest.mark.parametrize("version", [2, 0, None, "1"])
def test_incompatible_schema_is_an_error(tmp_path, version):
    job = write_job(tmp_path, "vit", 1, 0, [0.5])
    result = json.loads((job / "result.json").read_text())
    result["schema_version"] = version
    (job / "result.json").write_text(json.dumps(result))
    with pytest.raises(AnalysisError, match="incompatible result schema_version"):
        records_from_dirs([tmp_path])


def test_duplicates_with_the_same_end_time_keep_one(tmp_path):
    write_job(tmp_path, "vit", 1, 0, [0.5], name="a")
    write_job(tmp_path, "vit", 1, 0, [0.5], name="b")
    _, summary = build_frames(records_from_dirs([tmp_path])[0])
    assert summary["duplicate"].tolist() == [False, True]


def test_newest_sweep_and_its_grid(tmp_path):
    for age, name in ((200, "old"), (100, "new"), (300, "older")):
        sweep = tmp_path / name
        sweep.mkdir()
        (sweep / "multirun.yaml").write_text(
            "hydra:\n  overrides:\n    task: [experiment=smoke]\n"
            "  sweeper:\n    params: {model: 'vit,vitbnffn', model.depth: 'range(1,4)'}\n"
        )
        os.utime(sweep / "multirun.yaml", (time.time() - age, time.time() - age))
    assert newest_sweep(tmp_path) == tmp_path / "new"
    info = sweep_info(tmp_path / "new")
    assert info.command == "python -m vitbn_sweep -m experiment=smoke"
    assert info.expected == 6
    with pytest.raises(AnalysisError, match="no sweep found"):
        newest_sweep(tmp_path / "new" / "..x")


def test_records_without_paths_or_with_the_same_path(tmp_path):
    write_grid(tmp_path, {1: 0.0}, seeds=1, epochs=2)
    records, _ = records_from_dirs([tmp_path])
    again = [JobRecord(r.result, r.metrics, "wandb", r.path) for r in records]
    pathless = [JobRecord(r.result, r.metrics, "mlflow", None) for r in records]
    tidy, summary = build_frames([*records, *again, *pathless])
    assert summary["job"].is_unique and len(tidy) == 6 * 2
    assert summary["duplicate"].sum() == 4  # the same two configs, three times each


def test_sweeps_are_found_under_a_folder_named_report_but_not_inside_a_sweeps_report(
    tmp_path,
):
    outputs = tmp_path / "report" / "outputs"  # the user's own folder may be called report
    for path in (outputs / "grid", outputs / "grid" / "report" / "copy"):
        path.mkdir(parents=True)
        (path / "multirun.yaml").write_text("hydra:\n  overrides:\n    task: []\n")
    assert newest_sweep(outputs) == outputs / "grid"
    assert [Path(s.path) for s in find_sweeps([str(outputs)])] == [outputs / "grid"]


def test_a_sweeps_size_is_the_grid_the_sweeper_launches(tmp_path):
    """The command line's key replaces the config's param of that key (its values, the
    param's place), as the sweeper's grid does; an interval sweep has no size."""
    (tmp_path / "multirun.yaml").write_text(
        "hydra:\n  overrides:\n    task:\n    - model.depth=5,6\n    - optim.lr=0.1\n"
        "  sweeper:\n    params: {model: 'vit,vitbnffn', model.depth: 'range(1,4)'}\n"
    )
    assert sweep_info(tmp_path).expected == 4  # 2 models x depths 5, 6
    params = ["model=vit,vitbnffn", "model.depth=range(1,4)"]
    jobs = grid(OverridesParser.create().parse_overrides([*params, "model.depth=5,6"]))
    assert len(jobs) == 4 and jobs[0] == ["model=vit", "model.depth=5"]
    assert grid_size(["model.depth=interval(1,2)"]) is None
