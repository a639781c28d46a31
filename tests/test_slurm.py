"""Sweeps on a real Slurm cluster through submitit (``hydra/launcher=slurm_cpu``).

These run when a cluster answers (``.ci/run`` and ``make test-slurm`` start the
single-node one of ``../shared/slurm/local-slurm.sh``) and skip, saying why,
when none does.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY, run_cli

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
SLURM = ["hydra/launcher=slurm_cpu", "hydra.launcher.timeout_min=10"]


def _cluster_problem() -> str | None:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "no Slurm client (sbatch, sinfo) on PATH"
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%a %t"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"sinfo failed: {exc}"
    if out.returncode != 0 or "up" not in out.stdout:
        return f"no Slurm partition is up (sinfo: {(out.stdout + out.stderr).strip()!r})"
    return None


@pytest.fixture(scope="module", autouse=True)
def slurm_cluster() -> None:
    problem = _cluster_problem()
    if problem:
        pytest.skip(
            f"Slurm tests need a running cluster: {problem}. "
            "Start one with ../shared/slurm/local-slurm.sh start (make test-slurm does)."
        )


def records(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/result.json")}


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, "the sweep ended before the job wrote a checkpoint"
        assert time.time() < deadline, f"{path} did not appear in {timeout} s"
        time.sleep(0.1)


def first_job_id() -> str:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout
    assert out.split(), "no job in squeue"
    return out.split()[0]


def kill_worker(sweep: Path, *, array_task: int) -> None:
    """SIGKILL the Python process of one array task of this sweep's Slurm job."""
    for proc_dir in Path("/proc").iterdir():
        try:
            cmdline = (proc_dir / "cmdline").read_bytes().split(b"\0")
            environ = (proc_dir / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if (
            b"submitit.core._submit" in cmdline
            and str(sweep).encode() in b" ".join(cmdline)
            and b"python" in cmdline[0]
            and f"SLURM_ARRAY_TASK_ID={array_task}".encode() in environ
        ):
            os.kill(int(proc_dir.name), signal.SIGKILL)
            return
    raise AssertionError(f"no worker process of array task {array_task} found")


def squeue_reasons() -> str:
    return subprocess.run(["squeue", "-h", "-o", "%i %T %r"], capture_output=True, text=True).stdout


RELEASE_S = 3  # seconds between a requeue and the run the test lets start


def sacct_states(job_id: str) -> list[str]:
    """Every state a job went through, one per run (``sacct -D``: requeued runs too)."""
    out = subprocess.run(["sacct", "-D", "-X", "-n", "-P", "-o", "State", "-j", job_id],
                         capture_output=True, text=True)  # fmt: skip
    return out.stdout.split()


def release_once_requeued(job_id: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until the preempted run of ``job_id`` is requeued; if Slurm holds it back
    (BeginTime: up to the credential lifetime, minutes), start it in a few seconds.

    Not at once: started within a second of the kill, slurmd still holds the old run's
    credential as revoked and refuses it ("Killing non-startable batch JobId=...: Job
    credential revoked" in slurmctld.log); the job then ends FAILED, which made this test
    flaky. A few seconds later the credential is reissued and the run starts.
    """
    deadline = time.time() + timeout
    while proc.poll() is None:
        assert time.time() < deadline, f"job {job_id} was not requeued: {squeue_reasons()}"
        now = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T %r"],
                             capture_output=True, text=True).stdout.strip()  # fmt: skip
        if now == "PENDING BeginTime":
            start = ["scontrol", "update", f"JobId={job_id}", f"StartTime=now+{RELEASE_S}"]
            subprocess.run(start, check=True)
            return
        if now.startswith("RUNNING") and "REQUEUED" in sacct_states(job_id):
            return  # Slurm started the requeued run itself
        time.sleep(0.2)


def wait_queue_empty(timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip():
        assert time.time() < deadline, "Slurm queue did not drain"
        time.sleep(0.5)


def popen_cli(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "VITBN_OUTPUT_DIR": str(cwd / "outputs")}
    return subprocess.Popen(
        [sys.executable, "-m", "vitbn_sweep", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def metric_columns(job_dir: Path) -> list[list[str]]:
    return [r.split(",")[:5] for r in (job_dir / "metrics.csv").read_text().splitlines()]


def test_sweep_runs_under_slurm_and_a_finished_sweep_submits_nothing(
    data_dir: Path, tmp_path: Path
) -> None:
    args = ["-m", *SLURM, "model=vit,vitbnffn", "model.depth=1,2", *TINY]
    start = time.perf_counter()
    proc = run_cli(args, cwd=tmp_path)
    first = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = records(tmp_path / "outputs" / "default")
    assert len(found) == 4
    for record in found.values():
        assert record["status"] == "completed"
        assert record["where"]["scheduler"] == "slurm" and record["where"]["slurm_job_id"]
        assert record["threads"] == 1  # cpus_per_task of slurm_cpu

    start = time.perf_counter()
    again = run_cli(args, cwd=tmp_path)
    resubmit = time.perf_counter() - start
    assert again.returncode == 0, again.stderr
    assert "4 jobs, 4 already ended (skipped), 0 running elsewhere, 0 to launch" in (
        again.stdout + again.stderr
    )
    assert records(tmp_path / "outputs" / "default") == found
    assert resubmit < 20
    print(
        f"\nslurm sweep of 4 jobs: {first:.1f} s; resubmit of the finished sweep: {resubmit:.1f} s"
    )


LONG = [
    "model.depth=1",
    "trainer.epochs=3",
    "data.train_size=3000",
    "data.test_size=100",
    "trainer.batch_size=50",
    "trainer.test_batch_size=100",
    "logger=none",
    "sweep_name=default",
]


def reference(tmp_path: Path, overrides: list[str]) -> Path:
    """The same job run locally without interruption (same threads: 1)."""
    overrides = [o for o in overrides if not o.startswith("sweep_name=")]  # its own sweep
    proc = run_cli(["-m", "sweep_name=reference", "trainer.threads=1", *overrides], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (job,) = (tmp_path / "outputs" / "reference").glob("*/result.json")
    return job.parent


def test_preempted_job_is_requeued_and_continues_from_its_checkpoint(
    data_dir: Path, tmp_path: Path
) -> None:
    proc = popen_cli(["-m", *SLURM, *LONG], cwd=tmp_path)
    sweep = tmp_path / "outputs" / "default"
    wait_for_glob = time.time() + 180
    while not list(sweep.glob("*/checkpoint.pt")):
        assert proc.poll() is None and time.time() < wait_for_glob, proc.stdout.read()
        time.sleep(0.1)
    job_id = first_job_id()
    # What Slurm does before a preemption or the time limit: the signal submitit asked
    # for (#SBATCH --signal=USR2@signal_delay_s) to the job's processes.
    from submitit.slurm.slurm import SlurmJobEnvironment

    subprocess.run(["scancel", f"--signal={SlurmJobEnvironment.USR_SIG}", job_id], check=True)
    release_once_requeued(job_id, proc)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert "REQUEUED" in sacct_states(job_id), "the job was not requeued"
    ((name, record),) = records(sweep).items()
    assert record["status"] == "completed"
    assert record["resumed_from_epoch"] is not None and record["resumed_from_epoch"] >= 1
    log = (sweep / name / "vitbn_sweep.log").read_text()
    assert "resuming after epoch" in log
    assert metric_columns(sweep / name) == metric_columns(reference(tmp_path, LONG))


def test_cancelled_job_alone_trains_again_from_its_checkpoint(
    data_dir: Path, tmp_path: Path
) -> None:
    args = ["-m", *SLURM, "data.train_size=200,3000", *[a for a in LONG if "train_size" not in a]]
    proc = popen_cli(args, cwd=tmp_path)
    sweep = tmp_path / "outputs" / "default"
    long_job = sweep / (
        "data.test_size=100,data.train_size=3000,model.depth=1,"
        "trainer.batch_size=50,trainer.epochs=3,trainer.test_batch_size=100"
    )
    wait_for(long_job / "checkpoint.pt", proc)
    kill_worker(sweep, array_task=1)  # kill -9 of the worker, as a node failure would
    proc.communicate(timeout=120)
    wait_queue_empty()
    assert not (long_job / "result.json").exists()

    again = run_cli(args[:1] + args[1:], cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    text = again.stdout + again.stderr
    ended = len(records(sweep)) - 1  # the long job is not among the ended ones
    assert (
        f"2 jobs, {ended} already ended (skipped), 0 running elsewhere, {2 - ended} to launch"
        in (text)
    )
    record = json.loads((long_job / "result.json").read_text())
    assert record["status"] == "completed" and record["resumed_from_epoch"] >= 1
    assert metric_columns(long_job) == metric_columns(reference(tmp_path, LONG))


def test_impossible_request_fails_at_once_with_slurms_message(tmp_path: Path) -> None:
    start = time.perf_counter()
    proc = run_cli(["-m", *SLURM, "hydra.launcher.mem_gb=100000", *TINY], cwd=tmp_path, timeout=120)
    assert proc.returncode != 0
    assert time.perf_counter() - start < 60
    text = proc.stdout + proc.stderr
    assert "Requested node configuration is not available" in text or "Memory specification" in text


def test_a_rerun_while_the_first_submission_runs_launches_nothing_twice(
    data_dir: Path, tmp_path: Path
) -> None:
    args = ["-m", *SLURM, "trainer.seed=0,1,2,3,4,5,6,7", "model.depth=1", *TINY]
    first = popen_cli(args, cwd=tmp_path)
    sweep = tmp_path / "outputs" / "default"
    deadline = time.time() + 180
    while len(records(sweep)) < 2:
        assert first.poll() is None and time.time() < deadline, "no job ended in time"
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)  # the submitting process dies; its array lives on
    first.wait()
    again = run_cli(args, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    text = again.stdout + again.stderr
    ended = int(text.split("8 jobs, ")[1].split(" already ended")[0])
    # Every job not ended is pending or running in the first array: none is submitted again.
    assert f"{8 - ended} running elsewhere, 0 to launch" in text, text
    assert ended < 8 and "Slurm job " in text
    wait_queue_empty(timeout=300)
    found = records(sweep)
    assert len(found) == 8 and all(r["status"] == "completed" for r in found.values())
    assert len({r["where"]["slurm_job_id"] for r in found.values()}) == 1  # one array only
    assert not list(sweep.glob("*/.claim.json"))  # each job released its claim


def test_a_pending_job_whose_config_changed_is_refused_when_it_starts(
    data_dir: Path, tmp_path: Path
) -> None:
    """conf/ edited while the array waits in the queue: the jobs that start afterwards
    compose the edit; each is refused, and none trains the edited config."""
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf)
    args = ["-cp", str(conf), "-m", *SLURM, "hydra.launcher.array_parallelism=1"]
    proc = popen_cli([*args, "model=vit", "model.depth=1,2", *TINY], cwd=tmp_path)
    sweep = tmp_path / "outputs" / "default"
    deadline = time.time() + 120
    while True:  # until every claim names its Slurm job: the array is in the queue
        owners = [json.loads(p.read_text())["owner"] for p in sweep.glob("*/.claim.json")]
        if len(owners) == 2 and all(o["kind"] == "slurm" for o in owners):
            break
        assert proc.poll() is None and time.time() < deadline, "no array was submitted"
        time.sleep(0.02)
    vit = conf / "model" / "vit.yaml"
    vit.write_text(vit.read_text().replace("mlp_dim: 128", "mlp_dim: 64"))
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, out
    assert "PlanDrift: " in out and "(model.mlp_dim: 128 planned, 64 now)" in out
    assert "(before it wrote anything)" in out
    found = records(sweep)  # the first job may have composed before the edit
    assert len(found) <= 1 and all(r["config"]["model"]["mlp_dim"] == 128 for r in found.values())
    assert not list(sweep.glob("*/.claim.json"))  # a refused job releases its Slurm claim
    wait_queue_empty()
