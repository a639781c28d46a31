"""Reruns of a sweep as users do them: same dirs for where/how keys, failures rerun, claims."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY, run_cli
from vitbn_sweep import store
from vitbn_sweep.identity import job_identity
from vitbn_sweep.store import claims

SWEEP = ["-m", "model=vit,vitbnffn", "model.depth=1", *TINY]


def job_dirs(sweep: Path) -> list[Path]:
    return sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))


def ended_at(sweep: Path) -> dict[str, str]:
    return {
        j.name: json.loads((j / "result.json").read_text())["ended_at"] for j in job_dirs(sweep)
    }


@pytest.mark.slow
def test_a_rerun_with_where_and_how_keys_retrains_nothing(data_dir: Path, tmp_path: Path) -> None:
    first = run_cli(SWEEP, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    live = first.stdout + first.stderr  # the sweep's live status: one line per ended job
    assert live.count("sweep default: completed: ") == 2 and "2/2 jobs done" in live
    assert "\r" not in live  # a log file, not a terminal: whole lines only
    sweep = tmp_path / "outputs" / "default"
    before = ended_at(sweep)
    assert len(before) == 2
    for how in (
        ["logger=wandb"],
        ["resume.rerun_failed=true", "resume.rerun_diverged=true"],
        ["data.download=false", "data.num_workers=2", "trainer.eval_chunk=50"],
        ["trainer.device=cpu", "trainer.threads=2", "trainer.progress=bar", "trainer.compile=true"],
    ):
        again = run_cli([*SWEEP, *how], cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        out = again.stdout + again.stderr
        assert "2 jobs, 2 already ended (skipped), 0 running elsewhere, 0 to launch" in out, how
        assert ended_at(sweep) == before, how  # the same two dirs, nothing retrained
    commands = (sweep / "commands.jsonl").read_text().splitlines()
    assert len([c for c in commands if json.loads(c)["event"] == "start"]) == 5


@pytest.mark.slow
def test_failed_jobs_are_rerun_and_the_sweep_says_so(data_dir: Path, tmp_path: Path) -> None:
    # The data is where the sweep checks it, not where its jobs run (a node without the
    # shared folder): the jobs fail when they start.
    missing = ["data.download=false", f"+hydra.job.env_set.VITBN_DATA_DIR={tmp_path / 'nowhere'}"]
    failed = run_cli([*SWEEP, *missing], cwd=tmp_path)
    assert failed.returncode == 1
    out = failed.stdout + failed.stderr
    assert "2 jobs: 0 completed, 0 diverged, 2 failed" in out
    assert out.count("job failed: ") == 2 and "Traceback" not in out
    assert "MNIST files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k" in out
    fixed = run_cli(SWEEP, cwd=tmp_path)  # the data is back: the same command reruns them
    assert fixed.returncode == 0, fixed.stderr
    out = fixed.stdout + fixed.stderr
    assert "2 jobs, 0 already ended (skipped), 0 running elsewhere, 2 to launch" in out
    assert "2 jobs: 2 completed, 0 diverged, 0 failed" in out
    statuses = {
        json.loads((j / "result.json").read_text())["status"]
        for j in job_dirs(tmp_path / "outputs" / "default")
    }
    assert statuses == {"completed"}


@pytest.mark.slow
def test_a_failed_single_run_prints_one_clear_line(tmp_path: Path) -> None:
    proc = run_cli(
        ["data.download=false", f"data.root={tmp_path / 'nowhere'}", *TINY], cwd=tmp_path
    )
    assert proc.returncode == 1
    assert "vitbn_sweep: DataError: MNIST files train-images-idx3-ubyte" in proc.stderr
    assert "Traceback" not in proc.stderr and "HYDRA_FULL_ERROR=1" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["+trainer.foo=1"], "trainer.foo is not a config key"),
        (["+trainer.epoch=3"], "trainer.epoch is not a config key (did you mean trainer.epochs?)"),
        (["trainer.epoch=3"], "trainer.epoch is not a config key (did you mean trainer.epochs?)"),
        (
            ["-m", "model=vit,vitbnfn"],
            "model=vitbnfn is not an option of model (did you mean vitbnffn?",
        ),
        (["model=dnn", "+model.dim=64"], "model.dim is not a config key"),
    ],
)
def test_unknown_keys_are_refused_before_anything_runs(
    tmp_path: Path, args: list[str], message: str
) -> None:
    proc = run_cli([*args, *TINY], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*.json"))


def _live_foreign_claim(job_dir: Path, process: subprocess.Popen) -> None:
    owner = claims.this_owner("another-command")
    owner.update(pid=process.pid, pid_start=claims._pid_start(process.pid))
    claims.claim(job_dir, owner)


@pytest.mark.slow
def test_a_job_claimed_by_a_live_process_is_not_launched_again(
    data_dir: Path, tmp_path: Path
) -> None:
    sweep = tmp_path / "outputs" / "default"
    args = ["-m", "model=vit", "model.depth=1,2", *TINY]
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        held = (
            sweep / "data.test_size=100,data.train_size=200,model.depth=2,model=vit,"
            "trainer.batch_size=50,trainer.epochs=1,trainer.test_batch_size=100"
        )
        _live_foreign_claim(held, holder)
        proc = run_cli(args, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout + proc.stderr
        assert "2 jobs, 0 already ended (skipped), 1 running elsewhere, 1 to launch" in out
        assert f"process {holder.pid} on" in out and not (held / "result.json").exists()
    finally:
        holder.kill()
        holder.wait()
    # its owner is gone: the next rerun takes the claim over and trains the job
    again = run_cli(args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    out = again.stdout + again.stderr
    assert "1 already ended (skipped), 0 running elsewhere, 1 to launch" in out
    assert json.loads((held / "result.json").read_text())["status"] == "completed"
    assert not (held / store.CLAIM_FILE).exists()


def test_a_job_started_while_a_live_owner_holds_it_does_not_train(
    tiny_config, tmp_path: Path
) -> None:
    from vitbn_sweep.train import run

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        _live_foreign_claim(tmp_path / "job", holder)
        record = run(tiny_config(), tmp_path / "job")
        assert record["status"] == "claimed"
        assert sorted(p.name for p in (tmp_path / "job").iterdir()) == [store.CLAIM_FILE]
    finally:
        holder.kill()
        holder.wait()
    assert run(tiny_config(), tmp_path / "job")["status"] == "completed"


def test_the_same_owner_is_alive_and_a_dead_one_is_not(tmp_path: Path) -> None:
    liveness = claims.Liveness()
    me = claims.this_owner("t")
    assert liveness.alive(me)[0]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not liveness.alive({**me, "pid": dead.pid})[0]
    assert not liveness.alive({**me, "pid_start": "0"})[0]  # a reused pid
    assert liveness.alive({**me, "host": "elsewhere"})[0]  # cannot tell: counts as alive


@pytest.mark.slow
def test_a_job_whose_config_changed_after_the_plan_is_refused(
    data_dir: Path, tmp_path: Path
) -> None:
    """conf/ edited while a sweep runs: later jobs would compose the new config under the
    planned directory names. Each is refused before it writes anything; a rerun plans anew."""
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf)
    vit = conf / "model" / "vit.yaml"
    edit = "+hydra.callbacks.edit"
    args = [
        "-cp",
        str(conf),
        "-m",
        "model=vit",
        "model.depth=1,2",
        f"{edit}._target_=tests.drift_callback.EditConfigOnJobEnd",
        f"{edit}.path={vit}",
        f"{edit}.old='mlp_dim: 128'",
        f"{edit}.new='mlp_dim: 64'",
        *TINY,
    ]
    env = {"PYTHONPATH": str(REPO)}
    proc = run_cli(args, cwd=tmp_path, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "2 jobs: 1 completed, 0 diverged, 1 failed" in out
    assert "PlanDrift: " in out and "its config changed after the sweep planned it" in out
    assert "(model.mlp_dim: 128 planned, 64 now)" in out and "(before it wrote anything)" in out
    sweep = tmp_path / "outputs" / "default"
    [done] = job_dirs(sweep)  # the refused job left no directory behind
    assert "model.depth=1" in done.name
    assert json.loads((done / "result.json").read_text())["config"]["model"]["mlp_dim"] == 128
    # the same command again: the ended job's directory holds the old config, refused loudly
    again = run_cli(args, cwd=tmp_path, env=env)
    assert again.returncode == 2, again.stdout + again.stderr
    assert "holds a job of a different config (model.mlp_dim: 128 there, 64 now)" in again.stderr
    vit.write_text(vit.read_text().replace("mlp_dim: 64", "mlp_dim: 128"))  # conf/ restored
    restored = run_cli(args[: -len(TINY) - 4] + TINY, cwd=tmp_path, env=env)
    out = restored.stdout + restored.stderr
    assert restored.returncode == 0, out
    assert "2 jobs, 1 already ended (skipped), 0 running elsewhere, 1 to launch" in out
    assert len(job_dirs(sweep)) == 2


def test_the_plan_check_reads_only_this_sweeps_claim(
    tiny_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned = job_identity(tiny_config())
    changed = job_identity(tiny_config("model.dim=32"))
    job = tmp_path / "job"
    job.mkdir()
    sweeper = {**claims.this_owner("sweep-a"), "pid": 1, "pid_start": "0"}  # another process
    claims.claim(job, sweeper, planned)
    claims.check_planned(job, "sweep-a", planned)  # as planned
    claims.check_planned(job, "sweep-b", changed)  # another sweep's plan: not ours to check
    with pytest.raises(claims.PlanDrift, match=r"job: .*model.dim: 64 planned, 32 now"):
        claims.check_planned(job, "sweep-a", changed)
    assert claims.read(job)["owner"] == sweeper  # the sweeper's claim: it releases it
    # a submitted Slurm job takes the claim over, and the plan with it
    claims.hand_over(job, claims.this_owner("sweep-a", slurm_job_id="12_3"))
    assert claims.read(job)["identity"] == planned
    monkeypatch.setenv("SLURM_JOB_ID", "40")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "12")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    with pytest.raises(claims.PlanDrift):  # in that Slurm job: refused, and its claim released
        claims.check_planned(job, "sweep-a", changed)
    assert claims.read(job) is None
    claims.claim(job, sweeper)  # a claim without a plan (a single run) checks nothing
    claims.check_planned(job, "sweep-a", changed)


def test_a_stacked_group_with_a_drifted_member_trains_nothing(
    tiny_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vitbn_sweep.engine import train_group

    monkeypatch.setenv(claims.TOKEN_ENV, "the-sweep")
    configs = [tiny_config(f"optim.lr={lr}") for lr in (0.001, 0.003)]
    dirs = [tmp_path / "a", tmp_path / "b"]
    for job_dir, config in zip(dirs, configs, strict=True):
        job_dir.mkdir()
        sweeper = {**claims.this_owner("the-sweep"), "pid": 1, "pid_start": "0"}
        claims.claim(job_dir, sweeper, job_identity(config))
    drifted = [{**c, "trainer": {**c["trainer"], "epochs": 2}} for c in configs]  # conf/ edited
    refused = train_group(drifted, dirs)  # every member fails with the refusal
    assert [type(o) for o in refused] == [claims.PlanDrift, claims.PlanDrift]
    assert re.search(r"a: .*trainer.epochs: 1 planned, 2 now", str(refused[0]))
    for job_dir in dirs:  # nothing written, both claims still the sweep's
        assert [p.name for p in job_dir.iterdir()] == [store.CLAIM_FILE]
