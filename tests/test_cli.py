"""The entrypoint as users run it: ``python -m vitbn_sweep [-m] ...`` in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import TINY, run_cli

# A job long enough (three epochs of 1500 images) to be cut after its first epoch.
THREE_EPOCHS = ["model.depth=1", "trainer.epochs=3", "data.train_size=1500", "data.test_size=100",
                "trainer.batch_size=50", "trainer.test_batch_size=100", "logger=none",
                "trainer.threads=1"]  # fmt: skip


def job_dirs(sweep: Path) -> list[Path]:
    return sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))


def cut(args: list[str], cwd: Path, started: Callable[[], bool], signum: int) -> tuple[int, str]:
    """``python -m vitbn_sweep ARGS`` in the background, sent ``signum`` once ``started()``
    (an epoch written; at most 120 s): its exit code and stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vitbn_sweep", *args],
        cwd=cwd,
        env={**os.environ, "VITBN_OUTPUT_DIR": str(cwd / "outputs")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not started() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.slow
def test_multirun_writes_one_job_dir_per_grid_point(data_dir: Path, tmp_path: Path) -> None:
    args = ["-m", "model=vit,vitbnffn", "model.depth=1,2", *TINY]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    sweep = tmp_path / "outputs" / "default"
    jobs = job_dirs(sweep)
    common = "trainer.batch_size=50,trainer.epochs=1,trainer.test_batch_size=100"
    assert [j.name for j in jobs] == [
        f"data.test_size=100,data.train_size=200,model.depth={d},model={m},{common}"
        for d in (1, 2)
        for m in ("vit", "vitbnffn")
    ]
    assert len(jobs) == 4 and (sweep / "multirun.yaml").is_file()
    seen = set()
    for job in jobs:
        record = json.loads((job / "result.json").read_text())
        assert record["status"] == "completed" and (job / "metrics.csv").is_file()
        seen.add((record["config"]["model"]["name"], record["config"]["model"]["depth"]))
        assert f"model={record['config']['model']['name']}," in job.name + ","
    assert seen == {("vit", 1), ("vit", 2), ("vitbnffn", 1), ("vitbnffn", 2)}

    # the same command again: every job found ended, nothing launched or trained
    start = time.perf_counter()
    again = run_cli(args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    out = again.stdout + again.stderr
    assert "4 jobs, 4 already ended (skipped), 0 running elsewhere, 0 to launch" in out
    assert "4 jobs: 0 completed, 0 diverged, 0 failed, 0 not ended, 4 skipped" in out
    assert time.perf_counter() - start < 30
    assert [json.loads((j / "result.json").read_text())["ended_at"] for j in jobs] == [
        json.loads((j / "result.json").read_text())["ended_at"] for j in job_dirs(sweep)
    ]


@pytest.mark.slow
def test_diverging_job_does_not_stop_the_sweep(data_dir: Path, tmp_path: Path) -> None:
    proc = run_cli(["-m", "optim.lr=1e30,0.003", *TINY], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    statuses = {
        json.loads((j / "result.json").read_text())["config"]["optim"]["lr"]: json.loads(
            (j / "result.json").read_text()
        )["status"]
        for j in job_dirs(tmp_path / "outputs" / "default")
    }
    assert statuses == {1e30: "diverged", 0.003: "completed"}


def test_bad_sweep_value_fails_before_anything_runs(tmp_path: Path) -> None:
    proc = run_cli(["-m", "model.depth=2,0", "optim.lr=0.003", *TINY], cwd=tmp_path)
    assert proc.returncode != 0
    assert "model.depth must be an integer >= 1, got 0" in proc.stderr
    assert "nothing was launched" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs").exists()


def test_bad_single_run_value_fails_and_leaves_nothing(tmp_path: Path) -> None:
    proc = run_cli(["trainer.device=tpu", *TINY], cwd=tmp_path)
    assert proc.returncode == 2
    assert "trainer.device must be auto, cpu, cuda, cuda:N or mps, got 'tpu'" in proc.stderr
    runs = tmp_path / "outputs" / "runs"
    assert not runs.exists() or not any(runs.iterdir())


@pytest.mark.slow
def test_missing_data_says_where_it_looked(tmp_path: Path) -> None:
    proc = run_cli(
        ["data.download=false", *TINY],
        cwd=tmp_path,
        env={"VITBN_DATA_DIR": str(tmp_path / "nowhere")},
    )
    assert proc.returncode != 0
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in proc.stderr


@pytest.mark.slow
def test_killed_local_job_resumes_from_its_checkpoint(data_dir: Path, tmp_path: Path) -> None:
    args = [*THREE_EPOCHS, "hydra.run.dir=" + str(tmp_path / "job")]
    ckpt, rows = tmp_path / "job" / "checkpoint.pt", tmp_path / "job" / "metrics.csv"
    cut(args, tmp_path, rows.exists, signal.SIGKILL)
    assert ckpt.exists() and not (tmp_path / "job" / "result.json").exists()
    cut_rows = rows.read_text().count("\n") - 1
    assert 1 <= cut_rows < 3

    again = run_cli(args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    record = json.loads((tmp_path / "job" / "result.json").read_text())
    # the checkpoint of an epoch is written before its row: it may be one epoch ahead
    assert record["status"] == "completed" and record["resumed_from_epoch"] in (
        cut_rows,
        cut_rows + 1,
    )
    straight = run_cli(
        [
            a
            if not a.startswith("hydra.run.dir")
            else "hydra.run.dir=" + str(tmp_path / "straight")
            for a in args
        ],
        cwd=tmp_path,
    )
    assert straight.returncode == 0, straight.stderr

    def strip(path: Path) -> list[list[str]]:
        rows = [line.split(",") for line in path.read_text().splitlines()]
        return [r[:5] for r in rows]  # drop epoch_seconds, samples_per_s

    assert strip(tmp_path / "job" / "metrics.csv") == strip(tmp_path / "straight" / "metrics.csv")


@pytest.mark.slow
def test_packed_launcher_runs_jobs_side_by_side_with_a_core_each(
    data_dir: Path, tmp_path: Path
) -> None:
    tiny = [o for o in TINY if not o.startswith("trainer.threads")]
    proc = run_cli(
        ["-m", "hydra/launcher=packed", "hydra.launcher.n_jobs=2", "model.depth=1,2", *tiny],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    records = [
        json.loads(p.read_text()) for p in (tmp_path / "outputs" / "default").glob("*/result.json")
    ]
    assert len(records) == 2 and all(r["status"] == "completed" for r in records)
    cores = os.cpu_count() or 1
    assert {r["threads"] for r in records} == {max(cores // 2, 1)}
    assert len({r["where"]["pid"] for r in records}) == 2  # two worker processes


def test_the_task_pickles_as_submitit_ships_it() -> None:
    import cloudpickle

    from vitbn_sweep.__main__ import main
    from vitbn_sweep.train import run

    assert cloudpickle.loads(cloudpickle.dumps(main)) is main
    assert cloudpickle.loads(cloudpickle.dumps(run)) is run


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_a_sweep_cleanly(
    data_dir: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    """SIGTERM (kill, Slurm before a timeout) ends a sweep as Ctrl-C does: checkpoints kept,
    claims released, an end line in commands.jsonl, one line and no traceback."""
    args = ["-m", "sweep_name=cut", "trainer.seed=0,1", *THREE_EPOCHS]
    sweep = tmp_path / "outputs" / "cut"
    code, err = cut(args, tmp_path, lambda: any(sweep.rglob("metrics.csv")), signum)
    assert code == 130, err
    assert "Traceback" not in err
    said = [line for line in err.splitlines() if "interrupted" in line]
    assert said == [
        f"vitbn_sweep: interrupted ({signum.name}): run the same command again to continue "
        "(each job from its last checkpoint)"
    ]
    end = json.loads((sweep / "commands.jsonl").read_text().splitlines()[-1])
    assert end["event"] == "end" and end["interrupted"] == signum.name
    assert list(sweep.rglob("checkpoint.pt")) and not list(sweep.rglob(".claim.json"))
    again = run_cli(args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert all(
        json.loads(p.read_text())["status"] == "completed" for p in sweep.rglob("result.json")
    )


def test_a_sweep_name_with_spaces_or_other_letters(tmp_path: Path) -> None:
    """Unquoted non-ASCII letters are a config error (exit 2, the quoted form shown); a
    sweep dir with a space reaches `make status/report/resolve` as one argument."""
    bad = run_cli(["sweep_name=études", "trainer.epochs=1"], cwd=tmp_path)
    assert bad.returncode == 2, bad.stderr
    assert "quote it" in bad.stderr and "sweep_name='études'" in bad.stderr
    root = Path(__file__).resolve().parents[1]
    for target in ("status", "report", "resolve"):
        made = subprocess.run(
            ["make", "-n", target, "SWEEP=outputs/my sweep"],
            cwd=root,
            capture_output=True,
            text=True,
        )
        assert f"-m analysis {target} 'outputs/my sweep'" in made.stdout, made.stdout
