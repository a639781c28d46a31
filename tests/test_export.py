"""``python -m analysis export``: a finished sweep's jobs into MLflow and wandb, after the fact."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from analysis.cli import main
from analysis.export import sweep_jobs
from analysis.load import records_from_dirs
from tests.analysis_synth import write_job
from tests.test_tracking import frames_from, history, inspect_run, needs_mlflow, run_record
from vitbn_sweep.store import METRIC_COLUMNS
from vitbn_sweep.tracking.run import tracker_run

REPO = Path(__file__).resolve().parents[1]
# (model, depth, lr, seed, test_acc by epoch, status, job dir name)
JOBS = [
    ("vit", 2, 0.003, 0, [0.5, 0.6], "completed", "model.depth=2,model=vit,optim.lr=0.003"),
    ("vitbnffn", 4, 0.005, 2, [0.5, 0.7, 0.8], "completed", "model.depth=4,trainer.epochs=3"),
    ("vit", 3, 0.003, 1, [0.5], "diverged", "model.depth=3,model=vit,trainer.seed=1"),
]
NAMES = {"vit-d2-lr0.003-s0", "vitbnffn-d4-lr0.005-s2 epochs=3", "vit-d3-lr0.003-s1"}


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """``<tmp>/outputs/synthetic``: three ended jobs, a failed one and a cut one."""
    root = tmp_path / "outputs" / "synthetic"
    for model, depth, lr, seed, accs, status, name in JOBS:
        epochs = 3 if status == "diverged" else None
        job = write_job(
            root, model, depth, seed, accs, lr=lr, status=status, epochs=epochs, name=name
        )
        result = json.loads((job / "result.json").read_text())
        (job / "result.json").write_text(json.dumps({**result, "device": "cpu"}))
    write_job(root, "vit", 1, 1, [], status="failed", name="model.depth=1")
    write_job(root, "vit", 5, 1, [0.3], result=False, name="model.depth=5")
    return root


def export(sweep: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["export", str(sweep), *args]) == 0
    return capsys.readouterr().out


def by_job(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in ("job", "epoch") if c in frame]
    return frame.sort_values(keys).reset_index(drop=True)


def live_run_id(sweep: Path, job: str) -> str:
    """The run id the live tracker gives this job (sweep run from the outputs' parent)."""
    config = json.loads((sweep / job / "result.json").read_text())["config"]
    config["paths"] = {"outputs": str(sweep.parent)}
    return tracker_run(config, sweep / job).run_id


def test_export_takes_the_ended_jobs_under_their_live_identity(
    sweep: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir("/")  # the identity does not depend on where export runs
    jobs, report = sweep_jobs(sweep)
    assert sorted(job.identity.job_dir.name for job in jobs) == sorted(j[-1] for j in JOBS)
    assert [Path(p).name for p in report.failed] == ["model.depth=1"]
    assert [Path(p).name for p in report.unfinished] == ["model.depth=5"]
    for job in jobs:
        assert job.identity.run_id == live_run_id(sweep, job.identity.job_dir.name)
        assert job.identity.sweep == "synthetic" and job.identity.in_sweep
    assert {job.identity.name for job in jobs} == NAMES


@pytest.mark.slow  # an MLflow store from scratch: ~15 s
@needs_mlflow
def test_mlflow_export_is_read_back_once_per_job_with_its_history(
    sweep: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    from analysis.sources import records_from_mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(sweep.parent.parent)  # the default store: <outputs>/mlflow/mlflow.db
    out = export(Path("outputs/synthetic"), "--to", "mlflow", capsys=capsys)
    uri = f"sqlite:///{sweep.parent / 'mlflow' / 'mlflow.db'}"
    assert f"to mlflow ({uri}): 3 new runs, 0 updated, 0 already there" in out
    assert "not exported: 1 failed (rerun the sweep to retry them), 1 without result.json" in out
    assert "browse: make mlflow-ui SWEEP=outputs/synthetic" in out
    again = export(sweep, "--to", "mlflow", capsys=capsys)
    assert "0 new runs, 0 updated, 3 already there" in again

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # not set_tracking_uri: it leaks
    runs = mlflow.search_runs(experiment_names=["synthetic"], output_format="list")
    assert {r.data.tags["mlflow.runName"] for r in runs} == NAMES  # one run per job
    client = MlflowClient(tracking_uri=uri)
    for found in runs:
        tags, params = found.data.tags, found.data.params
        job = Path(tags["vitbn.job_dir"])
        result = json.loads((job / "result.json").read_text())
        config = result["config"]
        assert tags["vitbn.run_key"] == live_run_id(sweep, job.name)
        assert (tags["model"], tags["depth"], tags["lr"], tags["seed"]) == (
            config["model"]["name"],
            str(config["model"]["depth"]),
            str(config["optim"]["lr"]),
            str(config["trainer"]["seed"]),
        )
        assert (tags["sweep"], tags["device"], tags["status"]) == (
            "synthetic",
            "cpu",
            result["status"],
        )
        assert params["model.depth"] == str(config["model"]["depth"])
        assert params["trainer.epochs"] == str(config["trainer"]["epochs"])
        assert found.info.status == "FINISHED"
        metrics = found.data.metrics
        assert metrics["best_test_acc"] == result["best"]["test_acc"]
        assert metrics["epochs_run"] == result["epochs_run"]
        assert metrics["total_seconds"] == result["total_seconds"]
        expected = pd.read_csv(job / "metrics.csv")
        for key in METRIC_COLUMNS[1:]:
            logged = client.get_metric_history(found.info.run_id, key)
            assert [(m.step, m.value) for m in logged] == list(
                zip(expected["epoch"], expected[key], strict=True)
            )
    records, stats = records_from_mlflow(uri, "synthetic")
    assert stats.results == 3
    from_files, _ = records_from_dirs([sweep])
    exported = [r for r in from_files if r.result["status"] != "failed"]
    for got, want in zip(frames_from(records), frames_from(exported), strict=True):
        pd.testing.assert_frame_equal(by_job(got), by_job(want))

    # make mlflow-ui finds the store the export wrote (PY=echo: print, do not serve)
    done = subprocess.run(
        ["make", "-s", "mlflow-ui", f"SWEEP={sweep}", "PY=echo"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"--backend-store-uri {uri}" in done.stdout


@pytest.mark.slow  # an MLflow store from scratch: ~10 s
@needs_mlflow
def test_mlflow_export_completes_a_live_run_that_was_cut(
    sweep: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.tracking import MlflowClient

    from vitbn_sweep.tracking import build_tracker

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    job = sweep / JOBS[1][-1]
    config = json.loads((job / "result.json").read_text())["config"]
    config["paths"] = {"outputs": str(sweep.parent)}
    logger = {"name": "mlflow", "tracking_uri": None, "experiment": "synthetic", "tags": []}
    live = build_tracker(logger, job_dir=job)
    live.start(config)
    live.log_epoch({"epoch": 1, "test_acc": 0.5})  # cut here: no finish
    out = export(sweep, "--to", "mlflow", capsys=capsys)
    assert "2 new runs, 1 updated, 0 already there" in out
    client = MlflowClient(tracking_uri=f"sqlite:///{sweep.parent / 'mlflow' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id])
    (found,) = [r for r in runs if r.data.tags["vitbn.job_dir"] == str(job)]
    history = client.get_metric_history(found.info.run_id, "test_acc")
    assert sorted((m.step, m.value) for m in history) == [(1, 0.5), (2, 0.7), (3, 0.8)]
    assert found.info.status == "FINISHED" and found.data.tags["status"] == "completed"
    assert found.data.tags["mlflow.runName"] == "vitbnffn-d4-lr0.005-s2 epochs=3"


@pytest.mark.slow  # a wandb run per job, written offline: ~10 s
def test_wandb_export_is_offline_runs_read_back_and_written_once(
    sweep: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    out = export(sweep, "--to", "wandb", capsys=capsys)
    assert "to wandb (offline, " in out and "3 new runs, 0 updated, 0 already there" in out
    (hint,) = [line for line in out.splitlines() if line.startswith("upload these runs:")]
    pattern = hint.removeprefix("upload these runs: wandb sync ")
    written = sorted(Path("/").glob(pattern.lstrip("/")))
    assert len(written) == 3  # the sync command names exactly the runs written
    again = export(sweep, "--to", "wandb", capsys=capsys)
    assert "0 new runs, 0 updated, 3 already there" in again and "wandb sync" not in again
    export_root = sweep.parent / "wandb-export" / "synthetic"
    assert len(list(export_root.glob("*/wandb/offline-run-*"))) == 3
    rerun = sweep / JOBS[0][-1] / "result.json"  # the job ran again since: a new result
    rerun.write_text(json.dumps({**json.loads(rerun.read_text()), "ended_at": "2026-02-01"}))
    assert "0 new runs, 1 updated, 2 already there" in export(sweep, "--to", "wandb", capsys=capsys)

    names = set()
    for run_dir in written:
        records, summary = inspect_run(run_dir)
        meta = run_record(records)
        job = Path(summary["summary"]["job_dir"])
        result = json.loads((job / "result.json").read_text())
        names.add(meta["display_name"])
        assert meta["run_id"] == live_run_id(sweep, job.name)
        assert meta["run_group"] == "synthetic" and meta["project"] == "vitbn-sweep"
        assert meta["job_type"] == result["config"]["model"]["name"]
        model, depth = result["config"]["model"]["name"], result["config"]["model"]["depth"]
        lr, seed = result["config"]["optim"]["lr"], result["config"]["trainer"]["seed"]
        assert {model, f"depth={depth}", f"lr={lr}", f"seed={seed}", "sweep=synthetic"} <= set(
            summary["tags"]
        )
        assert "device=cpu" in summary["tags"]
        assert summary["config"]["model"] == result["config"]["model"]
        expected = pd.read_csv(job / "metrics.csv")
        logged = pd.DataFrame(history(records))
        assert list(logged["_step"]) == list(expected["epoch"])
        pd.testing.assert_frame_equal(
            logged[list(METRIC_COLUMNS)], expected[list(METRIC_COLUMNS)], check_dtype=False
        )
        assert summary["summary"]["status"] == result["status"] and summary["state"] == "finished"
        assert summary["summary"]["best"] == result["best"]
        assert summary["summary"]["epochs_run"] == result["epochs_run"]
    assert names == NAMES
