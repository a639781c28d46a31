"""Experiment tracking: wandb (offline here) and MLflow runs, and reading them back."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from analysis.frames import build_frames
from analysis.load import records_from_dirs
from analysis.records import AnalysisError
from analysis.sources import records_from_mlflow, records_from_wandb
from tests.conftest import TINY, compose_config, run_cli
from vitbn_sweep.identity import split_overrides
from vitbn_sweep.store import METRIC_COLUMNS
from vitbn_sweep.tracking import build_tracker, wandb_tracker
from vitbn_sweep.tracking.run import run_name, run_tags, tracker_run
from vitbn_sweep.tracking.wandb_tracker import has_credentials, resolve_mode
from vitbn_sweep.train import run
from vitbn_sweep.validate import config_errors

HAS_MLFLOW = importlib.util.find_spec("mlflow") is not None
needs_mlflow = pytest.mark.skipif(
    not HAS_MLFLOW, reason="mlflow is not installed (pip install -e '.[mlflow]')"
)
TWO_EPOCHS = [o for o in TINY if not o.startswith(("trainer.epochs", "logger"))] + [
    "trainer.epochs=2"
]
SWEEP = ["-m", "model=vit,vitbnffn", "model.depth=1", *TWO_EPOCHS]


@functools.cache
def _leet_supports_json() -> bool:
    out = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.returncode == 0 and "--json" in out.stdout


@functools.cache
def inspect_run(run_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """An offline run read by wandb's own reader (``wandb leet inspect``): records, summary."""
    if not _leet_supports_json():
        pytest.skip("this wandb has no `wandb leet inspect --json` (wandb >= 0.31 has)")

    def leet(*args: str) -> str:
        cmd = [sys.executable, "-m", "wandb", "leet", "inspect", "--json", *args, str(run_dir)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
        return out.stdout

    records = [json.loads(line) for line in leet().splitlines() if line.strip()]
    return records, json.loads(leet("--summary"))


def offline_runs(job_dir: Path) -> list[Path]:
    return sorted((job_dir / "wandb").glob("offline-run-*"))


def history(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r["history"]["item"] for r in records if r["type"] == "history"]


def run_record(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The run record written at init (the device tag set at the end writes a second one)."""
    found = [r["run"] for r in records if r["type"] == "run"]
    assert 1 <= len(found) <= 2 and all(r["run_id"] == found[0]["run_id"] for r in found)
    return found[0]


def job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(p.parent for p in sweep_dir.glob("*/result.json"))


def frames_from(records: list) -> tuple[pd.DataFrame, pd.DataFrame]:
    tidy, summary = build_frames(records)
    return tidy.drop(columns="source"), summary.drop(columns="source")


# --- config, identity, mode ---------------------------------------------------------------


def test_wandb_is_the_default_logger_and_logger_keys_are_checked() -> None:
    cfg = compose_config([])
    assert cfg["logger"]["name"] == "wandb" and cfg["logger"]["group"] == cfg["sweep_name"]
    assert cfg["logger"]["project"] == "vitbn-sweep" and cfg["logger"]["mode"] == "auto"
    bad = compose_config(["logger.mode=sometimes", "logger.project="])
    errors = config_errors(bad)
    assert any(e.startswith("logger.mode must be one of auto, online") for e in errors)
    assert any(e.startswith("logger.project must be a non-empty string") for e in errors)
    assert config_errors(compose_config(["logger.tags=[" + "x" * 65 + "]"])) != []
    mlflow = compose_config(["logger=mlflow", "sweep_name=grid_b"])
    assert mlflow["logger"]["experiment"] == "grid_b" and config_errors(mlflow) == []


def test_job_identity_is_the_sweep_and_the_overrides(tmp_path: Path) -> None:
    cfg = compose_config(["sweep_name=grid_b", f"paths.outputs={tmp_path}"])
    job = tmp_path / "grid_b" / "model=vit,model.depth=3"
    ident = tracker_run(cfg, job)
    assert (ident.sweep, ident.job, ident.in_sweep) == ("grid_b", "model=vit,model.depth=3", True)
    assert ident.run_id == tracker_run(cfg, job).run_id  # stable: a resume finds the run
    assert ident.run_id != tracker_run(cfg, job.with_name("model=vit,model.depth=4")).run_id
    assert not set(ident.run_id) & set(":;,#?/'") and len(ident.run_id) <= 64
    key = "grid_b/model=vit,model.depth=3"  # the id of the runs already logged stays
    assert ident.run_id == "vb-" + hashlib.sha1(key.encode()).hexdigest()[:16]
    assert (ident.sweep_dir, ident.job_dir) == ((tmp_path / "grid_b").resolve(), job.resolve())
    assert ident.name == run_name(cfg, ident.job)
    assert list(ident.labels) == ["model", "depth", "lr", "seed", "sweep"]
    assert run_tags(ident, ["x"])[-2:] == ["sweep=grid_b", "x"]  # wandb's tags, as words
    single = tracker_run(cfg, tmp_path / "runs" / "2026-01-01_00-00-00")
    assert single.job == "runs/2026-01-01_00-00-00" and not single.in_sweep
    assert single.sweep_dir is None and single.name == run_name(cfg)


def test_run_names_lead_with_model_depth_lr_and_seed() -> None:
    cfg = compose_config(["model=vitbnffn", "model.depth=4", "optim.lr=0.005", "trainer.seed=2"])
    assert run_name(cfg) == "vitbnffn-d4-lr0.005-s2"  # a single run: no sweep dir
    job = "model.depth=4,model=vitbnffn,optim.lr=0.005,trainer.seed=2"
    assert run_name(cfg, job) == "vitbnffn-d4-lr0.005-s2"
    more = "data.augment.zoom_out_side_range=[2.0,3.0],data.train_size=2000,model=vitbnffn"
    assert run_name(cfg, f"lr0.005/{more},trainer.epochs=3") == (
        "vitbnffn-d4-lr0.005-s2 augment.zoom_out_side_range=[2.0,3.0],train_size=2000,epochs=3"
    )
    assert run_name({**cfg, "optim": {"lr": 1e-4}}) == "vitbnffn-d4-lr0.0001-s2"
    assert split_overrides("a=[1,2],b={c:1,d:2},e=3") == ["a=[1,2]", "b={c:1,d:2}", "e=3"]


def test_wandb_mode_env_then_config_then_credentials(tmp_path: Path) -> None:
    no_creds = {"NETRC": str(tmp_path / "missing")}
    assert resolve_mode("online", {**no_creds, "WANDB_MODE": "disabled"}) == (
        "disabled",
        "WANDB_MODE",
    )
    assert resolve_mode("offline", no_creds) == ("offline", "logger.mode")
    assert resolve_mode("auto", no_creds) == ("offline", "no credentials")
    assert resolve_mode("auto", {**no_creds, "WANDB_API_KEY": "x" * 40})[0] == "online"
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    assert has_credentials({"NETRC": str(netrc)})
    assert not has_credentials({"NETRC": str(netrc), "WANDB_BASE_URL": "https://wb.example"})


class FakeWandb:
    """Records what ``wandb.init`` was given; its runs record what they were given."""

    def __init__(self) -> None:
        self.inits: list[dict[str, Any]] = []

    @staticmethod
    def Settings(**kwargs: Any) -> dict[str, Any]:  # noqa: N802 (wandb's name)
        assert "start_method" not in kwargs  # raises on current wandb
        return kwargs

    def init(self, **kwargs: Any) -> Any:
        self.inits.append(kwargs)
        run = SimpleNamespace(logged=[], summary={}, finished=None)
        run.log = lambda row, step: run.logged.append((step, row))
        run.finish = lambda exit_code: setattr(run, "finished", exit_code)
        return run


def test_no_credentials_means_offline_with_one_sync_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setattr(wandb_tracker, "_offline_warned", False)
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    cfg = compose_config(
        ["sweep_name=sw", f"paths.outputs={tmp_path}", "model=vitbnffn", "model.depth=1"]
    )
    for depth in (1, 2):
        tracker = build_tracker(cfg["logger"], job_dir=tmp_path / "sw" / f"model.depth={depth}")
        tracker.start(cfg)
        tracker.log_epoch({"epoch": 1, "test_acc": 0.5})
        tracker.finish({"status": "failed", "config": cfg, "final": None})
    warnings = [r for r in caplog.records if "wandb sync" in r.getMessage()]
    assert len(warnings) == 1
    assert f"wandb sync {tmp_path.resolve()}/sw/*/wandb/offline-run-*" in warnings[0].getMessage()
    first = fake.inits[0]
    assert first["mode"] == "offline" and first["resume"] == "allow"
    assert (first["group"], first["job_type"]) == ("sw", "vitbnffn")
    assert first["name"] == "vitbnffn-d1-lr0.003-s0"
    assert first["config"]["model"]["name"] == "vitbnffn" and first["settings"] == {"silent": True}
    assert first["dir"] == str(tmp_path / "sw" / "model.depth=1")
    assert {"vitbnffn", "depth=1", "sweep=sw"} <= set(first["tags"])
    assert fake.inits[0]["id"] != fake.inits[1]["id"]


def test_logger_none_imports_no_tracker_library() -> None:
    code = (
        "import sys; from pathlib import Path; from vitbn_sweep.tracking import build_tracker;"
        "t = build_tracker({'name': 'none'}, job_dir=Path('.')); t.start({}); t.finish({});"
        "print(sorted(m for m in ('wandb', 'mlflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- wandb offline runs, read back with wandb's own reader ----------------------------------


@pytest.fixture(scope="module")
def wandb_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("wandb_sweep")
    done = run_cli(
        [*SWEEP, "logger=wandb", "sweep_name=wb"], cwd=cwd, env={"WANDB_MODE": "offline"}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return cwd / "outputs" / "wb"


@pytest.mark.slow
def test_wandb_offline_multirun_leaves_one_run_per_job_with_config_and_metrics(
    wandb_sweep: Path,
) -> None:
    jobs = job_dirs(wandb_sweep)
    assert len(jobs) == 2
    run_ids = set()
    for job in jobs:
        (run_dir,) = offline_runs(job)
        records, summary = inspect_run(run_dir)
        result = json.loads((job / "result.json").read_text())
        meta = run_record(records)
        run_ids.add(meta["run_id"])
        assert meta["run_group"] == "wb" and meta["job_type"] == result["config"]["model"]["name"]
        model = result["config"]["model"]["name"]
        assert meta["display_name"] == f"{model}-d1-lr0.003-s0 " + ",".join(
            ["test_size=100", "train_size=200", "batch_size=50", "epochs=2", "test_batch_size=100"]
        )
        assert meta["resume"] is True
        config = summary["config"]
        assert config["model"] == result["config"]["model"]
        assert config["optim"]["lr"] == result["config"]["optim"]["lr"]
        expected = pd.read_csv(job / "metrics.csv")
        logged = pd.DataFrame(history(records))
        assert list(logged["_step"]) == list(expected["epoch"]) == [1, 2]
        pd.testing.assert_frame_equal(
            logged[list(METRIC_COLUMNS)], expected[list(METRIC_COLUMNS)], check_dtype=False
        )
        assert summary["summary"]["status"] == "completed" and summary["state"] == "finished"
        assert summary["summary"]["final"]["test_acc"] == result["final"]["test_acc"]
        assert summary["summary"]["best"] == result["best"]
    assert len(run_ids) == 2


class FakeApi:
    """``wandb.Api`` as ``records_from_wandb`` uses it, serving the offline runs' content."""

    def __init__(self, runs: list[Any]) -> None:
        self._runs, self.calls = runs, []

    def runs(self, path: str, filters: dict[str, Any]) -> list[Any]:
        self.calls.append((path, filters))
        return self._runs


def api_run_from_offline(run_dir: Path) -> Any:
    records, summary = inspect_run(run_dir)
    meta, rows = run_record(records), history(records)
    return SimpleNamespace(
        id=meta["run_id"],
        job_type=meta["job_type"],
        config=summary["config"],
        summary_metrics=summary["summary"],
        scan_history=lambda keys: [{k: row[k] for k in keys} for row in rows],
    )


@pytest.mark.slow
def test_wandb_runs_load_into_the_same_frames_as_the_result_files(wandb_sweep: Path) -> None:
    runs = [api_run_from_offline(offline_runs(job)[0]) for job in job_dirs(wandb_sweep)]
    report = SimpleNamespace(id="r", job_type="report")
    cut = SimpleNamespace(id="cut", job_type="vit", config={}, summary_metrics={"_step": 1})
    api = FakeApi([*runs, report, cut])
    records, stats = records_from_wandb("vitbn-sweep", "me", "wb", api=api)
    assert api.calls == [("me/vitbn-sweep", {"group": "wb"})]
    assert stats.results == 2 and stats.incomplete == ["wandb:me/vitbn-sweep/cut"]
    from_files, _ = records_from_dirs([wandb_sweep.resolve()])
    for got, want in zip(frames_from(records), frames_from(from_files), strict=True):
        pd.testing.assert_frame_equal(got, want)


def test_wandb_runs_none_ended_is_an_error_that_counts_them() -> None:
    cut = SimpleNamespace(id="cut", job_type="vit", config={}, summary_metrics={"_step": 1})
    with pytest.raises(AnalysisError, match=r"in wandb project me/p \(1 runs not ended\)$"):
        records_from_wandb("me/p", api=FakeApi([cut]))


def test_a_resumed_job_appends_to_the_same_wandb_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose_config(["sweep_name=sw", f"paths.outputs={tmp_path}"])
    job = tmp_path / "sw" / "model=vit"
    first = build_tracker(cfg["logger"], job_dir=job)
    first.start(cfg)
    first.log_epoch({"epoch": 1, "test_acc": 0.25})
    # The job is cut here (no finish); the resumed job starts its tracker again.
    time.sleep(1.1)  # wandb names a run dir by the second it started
    second = build_tracker(cfg["logger"], job_dir=job)
    second.start(cfg)
    second.log_epoch({"epoch": 2, "test_acc": 0.5})
    second.finish({"status": "completed", "config": cfg, "final": {"test_acc": 0.5}})
    (cut, resumed) = [inspect_run(d)[0] for d in offline_runs(job)]
    assert run_record(cut)["run_id"] == run_record(resumed)["run_id"]
    assert run_record(resumed)["resume"] is True
    assert [(r["_step"], r["test_acc"]) for r in history(cut)] == [(1, 0.25)]
    assert [(r["_step"], r["test_acc"]) for r in history(resumed)] == [(2, 0.5)]


def _train(cfg: dict[str, Any], job_dir: Path) -> dict[str, Any]:
    result = run(cfg, job_dir)
    assert (job_dir / "result.json").is_file() and (job_dir / "metrics.csv").is_file()
    return result


def tracker_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("vitbn_sweep.tracking") and r.levelno == logging.WARNING
    ]


@pytest.mark.parametrize("where", ["init", "log"])
def test_a_failing_wandb_costs_no_training_and_warns_once(
    where: str,
    tiny_config: Callable[..., dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import wandb
    from wandb.sdk.wandb_run import Run

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"wandb {where} exploded")

    monkeypatch.setenv("WANDB_MODE", "offline")
    if where == "init":
        monkeypatch.setattr(wandb, "init", boom)
    else:
        monkeypatch.setattr(Run, "log", boom)
    cfg = tiny_config("logger=wandb", "trainer.epochs=2", f"paths.outputs={tmp_path}")
    result = _train(cfg, tmp_path / "job")
    assert result["status"] == "completed" and result["epochs_run"] == 2
    (warning,) = tracker_warnings(caplog)
    assert f"wandb {where} exploded" in warning
    assert ("start failed" if where == "init" else "log_epoch failed") in warning
    if where == "log":  # the run still ended, with the summary
        (run_dir,) = offline_runs(tmp_path / "job")
        _, summary = inspect_run(run_dir)
        assert summary["summary"]["status"] == "completed" and summary["state"] == "finished"


# --- MLflow --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlflow_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAS_MLFLOW:
        pytest.skip("mlflow is not installed (pip install -e '.[mlflow]')")
    cwd = tmp_path_factory.mktemp("mlflow_sweep")
    done = run_cli([*SWEEP, "logger=mlflow", "sweep_name=mf"], cwd=cwd, env={})
    assert done.returncode == 0, done.stderr[-3000:]
    return cwd / "outputs"


@pytest.mark.slow
@needs_mlflow
def test_mlflow_multirun_has_both_runs_with_every_epoch(
    mlflow_sweep: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{mlflow_sweep.resolve() / 'mlflow' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # not set_tracking_uri: it leaks
    runs = mlflow.search_runs(experiment_names=["mf"], output_format="list")
    assert len(runs) == 2
    client = MlflowClient(tracking_uri=uri)
    for found in runs:
        job = Path(found.data.tags["vitbn.job_dir"])
        expected = pd.read_csv(job / "metrics.csv")
        assert found.data.tags["status"] == "completed" and found.info.status == "FINISHED"
        assert found.data.tags["sweep"] == "mf"
        assert found.data.params["model.depth"] == "1"
        assert found.data.params["model.name"] == found.data.tags["model"]
        for key in METRIC_COLUMNS[1:]:
            logged = client.get_metric_history(found.info.run_id, key)
            assert [(m.step, m.value) for m in logged] == list(
                zip(expected["epoch"], expected[key], strict=True)
            )


@pytest.mark.slow
@needs_mlflow
def test_mlflow_runs_load_into_the_same_frames_as_the_result_files(mlflow_sweep: Path) -> None:
    uri = f"sqlite:///{mlflow_sweep.resolve() / 'mlflow' / 'mlflow.db'}"
    records, stats = records_from_mlflow(uri, "mf")
    assert stats.results == 2 and stats.source == "mlflow" and not stats.incomplete
    from_files, _ = records_from_dirs([(mlflow_sweep / "mf").resolve()])
    for got, want in zip(frames_from(records), frames_from(from_files), strict=True):
        pd.testing.assert_frame_equal(got, want)


@pytest.mark.slow
@needs_mlflow
def test_a_resumed_job_continues_its_mlflow_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    cfg = compose_config(["logger=mlflow", "sweep_name=sw", f"paths.outputs={tmp_path}"])
    job = tmp_path / "sw" / "model=vit"
    first = build_tracker(cfg["logger"], job_dir=job)
    first.start(cfg)
    first.log_epoch({"epoch": 1, "test_acc": 0.25})
    second = build_tracker(cfg["logger"], job_dir=job)  # the job was cut; it resumes
    second.start(cfg)
    second.log_epoch({"epoch": 2, "test_acc": 0.5})
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    (found,) = client.search_runs([client.get_experiment_by_name("sw").experiment_id])
    history = client.get_metric_history(found.info.run_id, "test_acc")
    assert [(m.step, m.value) for m in history] == [(1, 0.25), (2, 0.5)]
    assert found.info.status == "RUNNING" and found.data.tags["status"] == "running"


# --- report publishing ---------------------------------------------------------------------


def test_the_report_publishes_its_table_and_figures_to_a_report_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    from vitbn_sweep.tracking.wandb_report import publish_report

    monkeypatch.setenv("WANDB_MODE", "offline")
    figure = tmp_path / "curves.png"
    Image.new("RGB", (8, 8), "white").save(figure)
    table = pd.DataFrame({"lr": [0.003, 0.005], "critical_depth": [4, None]})
    where = publish_report(
        {"critical_depth": table},
        {"curves": figure},
        project="vitbn-sweep",
        group="grid_b",
        wandb_dir=tmp_path / "report",
    )
    (run_dir,) = offline_runs(tmp_path / "report")
    assert Path(where) == run_dir
    records, _ = inspect_run(run_dir)
    meta, (logged,) = run_record(records), history(records)
    assert meta["job_type"] == "report" and meta["run_group"] == "grid_b"
    assert logged["tables/critical_depth._type"] == "table-file"  # history items are flat
    assert logged["tables/critical_depth.nrows"] == 2
    assert logged["figures/curves._type"] == "image-file"
    assert (run_dir / "files" / logged["figures/curves.path"]).is_file()
    table_file = run_dir / "files" / logged["tables/critical_depth.path"]
    assert json.loads(table_file.read_text())["columns"] == ["lr", "critical_depth"]


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback HTTP address that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.mark.slow
def test_an_unreachable_wandb_server_costs_one_short_timeout_per_sweep(
    data_dir: Path, tmp_path: Path, silent_server: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"}
    env.update(
        WANDB_API_KEY="x" * 40,
        WANDB_BASE_URL=silent_server,
        NETRC=str(tmp_path / "no-netrc"),
        VITBN_OUTPUT_DIR=str(tmp_path / "outputs"),
    )
    args = [*SWEEP, "logger=wandb", "logger.probe_timeout_s=2", "sweep_name=net"]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "vitbn_sweep", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = tmp_path / "outputs" / "net"
    assert "unreachable within 2 s" in (sweep / ".wandb_unreachable").read_text()
    jobs = [p for p in sweep.iterdir() if (p / "result.json").is_file()]
    assert len(jobs) == 2 and all(list((j / "wandb").glob("offline-run-*")) for j in jobs)
    assert (done.stdout + done.stderr).count("unreachable within") == 1  # one warning
    assert seconds < 60, seconds  # wandb's own retries cost ~90 s per job
