"""The sweep directory's store: atomic writes on a full disk, checked reads of damaged files,
and the job states a status or a report reads from a running sweep (issue 26)."""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from analysis.load import records_from_dirs, sweep_info
from tests.analysis_synth import write_job
from vitbn_sweep import store
from vitbn_sweep.store import claims, resume
from vitbn_sweep.store.record import SweepPlan, finish
from vitbn_sweep.store.status import read_sweep
from vitbn_sweep.store.watch import SweepWatcher
from vitbn_sweep.train import run

RESUME = {
    "enabled": True,
    "checkpoint": True,
    "keep_checkpoint": False,
    "rerun_failed": True,
    "rerun_diverged": False,
}


def full_disk(monkeypatch: pytest.MonkeyPatch, when: Callable[[Path], bool]) -> None:
    """Every store write of a path for which ``when(path)`` holds fails as on a full disk,
    after its bytes went into the temporary file (as a real ENOSPC on flush would)."""
    real = store._write_file

    def write(path: Path, fill: Callable[[Any], None]) -> None:
        if not when(path):
            return real(path, fill)

        def fill_then_fail(f: Any) -> None:
            fill(f)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        return real(path, fill_then_fail)

    monkeypatch.setattr(store, "_write_file", write)


def job_config(job_dir: Path) -> dict[str, Any]:
    """The config a rerun of the job in ``job_dir`` has (its record's, and resume's keys)."""
    return {**json.loads((job_dir / store.RESULT_FILE).read_text())["config"], "resume": RESUME}


# --- writes -----------------------------------------------------------------------------------


def test_a_failed_write_leaves_no_empty_file_and_the_old_one_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = tmp_path / "sweep" / store.MULTIRUN_FILE
    store.write_yaml(kept, {"trainer": {"epochs": 3}})
    full_disk(monkeypatch, lambda path: True)
    with pytest.raises(store.WriteError, match=f"{kept}: No space left on device"):
        store.write_yaml(kept, {"trainer": {"epochs": 4}})
    new = tmp_path / "fresh" / store.MULTIRUN_FILE
    with pytest.raises(store.WriteError, match="No space left"):
        store.write_yaml(new, {"trainer": {"epochs": 4}})
    assert store.read_yaml(kept) == {"trainer": {"epochs": 3}}
    assert not new.exists()  # no 0-byte multirun.yaml
    assert [p.name for p in kept.parent.iterdir()] == [store.MULTIRUN_FILE]  # no temp file


def test_full_disk_at_a_checkpoint_fails_the_job_naming_the_file_metrics_not_ahead(
    tiny_config: Callable[..., dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's case: a job that could not write its epoch-2 checkpoint left metrics.csv at
    epoch 2 with checkpoint.pt at epoch 1. Now the checkpoint comes first; the job is failed
    with the path and the cause, and a rerun continues it."""
    cfg = tiny_config("trainer.epochs=3", "model.depth=1")
    job = tmp_path / "job"
    saves = []

    def second_checkpoint(path: Path) -> bool:
        saves.append(path.name)
        return path.name == store.CHECKPOINT_FILE and saves.count(path.name) == 2

    with monkeypatch.context() as m:
        full_disk(m, second_checkpoint)
        with pytest.raises(store.WriteError):
            run(cfg, job)
    record = store.read_result(job)
    assert record is not None and record["status"] == "failed"
    assert record["error"]["message"] == (
        f"cannot write {job / store.CHECKPOINT_FILE}: No space left on device"
    )
    checkpoint = resume.load_checkpoint(job / store.CHECKPOINT_FILE)
    assert checkpoint is not None and checkpoint["epoch"] == 1
    assert len(store.read_metrics(job)) == 1  # never ahead of the checkpoint
    assert not (job / store.CLAIM_FILE).exists()
    again = run(cfg, job)
    assert again["status"] == "completed" and again["resumed_from_epoch"] == 1


def test_a_result_that_cannot_be_written_raises_naming_it_and_the_summary_counts_it(
    tiny_config: Callable[..., dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny_config("trainer.epochs=2", "model.depth=1")
    job = tmp_path / "sweep" / "a=1"
    with monkeypatch.context() as m:  # the disk fills after epoch 1: nothing more is written
        full_disk(m, lambda path: (job / store.METRICS_FILE).exists())
        with pytest.raises(store.WriteError, match=f"{job / store.RESULT_FILE}: No space") as cut:
            run(cfg, job)
    assert not (job / store.RESULT_FILE).exists() and not (job / store.CLAIM_FILE).exists()
    plan = SweepPlan(jobs=[["a=1"]], job_dirs={("a=1",): job}, pending=[["a=1"]])
    record = {"sweep_dir": str(tmp_path / "sweep")}
    with monkeypatch.context() as m:  # not even the end line fits: the summary says so
        m.setattr(store, "append_line", _no_space)
        summary = finish(record, plan, {("a=1",): cut.value})
    assert summary.failed == 1
    commands = tmp_path / "sweep" / store.COMMANDS_FILE
    assert summary.line.endswith(f"not recorded (cannot write {commands}: No space left on device)")


def _no_space(path: Path, line: object) -> None:
    raise store.WriteError(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))


def test_store_errors_travel_between_processes_whole() -> None:
    """A job's exception comes back to the sweeper pickled (joblib, submitit)."""
    cause = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    for error in (
        store.WriteError(Path("/s/a/metrics.csv"), cause),
        store.DamagedFile(Path("/s/a/result.json"), "not JSON"),
    ):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and str(again) == str(error)
        assert again.path == error.path


# --- reads ------------------------------------------------------------------------------------


def test_metrics_cut_40_bytes_short_are_no_data_and_the_job_runs_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job = write_job(tmp_path, "vit", 1, 0, [0.5, 0.6, 0.7])
    write_job(tmp_path, "vit", 1, 1, [0.5, 0.6, 0.7])
    metrics = job / store.METRICS_FILE
    metrics.write_bytes(metrics.read_bytes()[:-40])
    with pytest.raises(store.DamagedFile, match=f"{metrics}: cut short"):
        store.read_metrics(job)
    records, stats = records_from_dirs([tmp_path])
    assert [r.path for r in records] == [str(tmp_path / "model=vit,depth=1,lr=0.003,seed=1")]
    assert stats.incomplete == [f"{job} (damaged: {metrics}: cut short (its last line has no end))"]
    with caplog.at_level(logging.WARNING):
        assert resume.finished(job, job_config(job)) is None  # to run again
    assert f"{metrics}: cut short" in caplog.text


def test_metrics_with_fewer_rows_than_epochs_run_are_damaged(tmp_path: Path) -> None:
    job = write_job(tmp_path, "vit", 1, 0, [0.5, 0.6, 0.7])
    lines = (job / store.METRICS_FILE).read_text().splitlines(keepends=True)
    (job / store.METRICS_FILE).write_text("".join(lines[:-1]))  # cut on a line's end
    with pytest.raises(store.DamagedFile, match="2 rows, 3 epochs ran"):
        store.ended(job)


def test_a_garbage_result_is_named_and_the_job_runs_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job = write_job(tmp_path, "vit", 1, 0, [0.5, 0.6])
    config = job_config(job)
    (job / store.RESULT_FILE).write_text('{"schema_version": 1, "status": "compl')
    with caplog.at_level(logging.WARNING):
        assert resume.finished(job, config) is None
        assert resume.plan(job, config).action == "start"
    assert f"{job / store.RESULT_FILE}: not JSON" in caplog.text
    status = read_sweep(tmp_path, [job.name])
    assert status.jobs[0].state == store.INCOMPLETE
    assert status.jobs[0].detail.startswith("result.json: not JSON")


def test_a_result_of_an_unknown_schema_version_is_refused_not_taken_as_completed(
    tmp_path: Path,
) -> None:
    job = write_job(tmp_path, "vit", 1, 0, [0.5, 0.6], schema_version=99)
    config = job_config(job)
    with pytest.raises(resume.JobDirConflict, match=r"result.json: incompatible result schema_v"):
        resume.finished(job, config)
    status = read_sweep(tmp_path, [job.name])
    assert status.jobs[0].state != store.COMPLETED
    assert "schema_version 99" in status.jobs[0].detail


# --- states of a running sweep ------------------------------------------------------------------


def test_the_report_counts_claimed_jobs_that_have_not_begun_as_not_started(
    tmp_path: Path,
) -> None:
    """A running sweep claims every job it launches: their directories hold only a claim."""
    write_job(tmp_path, "vit", 1, 0, [0.5], name="a=1")
    names = ["a=1", "a=2", "a=3"]
    for name in names[1:]:
        claims.claim(tmp_path / name, claims.this_owner("sweep"))
    (tmp_path / store.GRID_FILE).write_text(json.dumps(names))
    (tmp_path / store.MULTIRUN_FILE).write_text("hydra: {overrides: {task: ['a=1,2,3']}}\n")
    info = sweep_info(tmp_path)
    assert info is not None and (info.planned, info.not_started) == (3, 2)
    _, stats = records_from_dirs([tmp_path])
    assert stats.incomplete == []  # a claim alone is no job cut short


def test_failed_jobs_a_rerun_claims_again_are_not_counted_as_ended(tmp_path: Path) -> None:
    names = ["a=1", "a=2"]
    for name in names:
        write_job(tmp_path, "vit", 1, 0, [0.5], status="failed", name=name)
    (tmp_path / store.JOBS_FILE).write_text(json.dumps(names))
    assert read_sweep(tmp_path).done == 2
    for name in names:  # the rerun's sweep command claims them (after they ended, in 2026)
        claims.claim(tmp_path / name, claims.this_owner("rerun"))
    out = io.StringIO()
    watcher = SweepWatcher(tmp_path, [tmp_path / n for n in names], stream=out, interval_s=3600)
    watcher.start()
    status = watcher.stop()
    assert out.getvalue().splitlines()[0] == f"sweep {tmp_path.name}: 2 jobs, 0 already ended"
    assert status.done == 0 and "nothing left" not in out.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("size", ["24k", "64k", "3m"])  # before any job, at the first, mid-run
def test_a_real_full_disk_mid_sweep_leaves_nothing_half_written_and_a_rerun_completes(
    size: str, data_dir: Path, tmp_path: Path
) -> None:
    """A small tmpfs as the output dir (inside ``unshare -rm``: no root needed): the sweep
    fills it and fails naming where; every file left is whole; freed, the same command
    completes every job."""
    import shutil
    import subprocess
    import sys

    from tests.conftest import TINY

    out, saved = tmp_path / "out", tmp_path / "saved"
    out.mkdir()
    saved.mkdir()
    probe = subprocess.run(["unshare", "-rm", "mount", "-t", "tmpfs", "tmpfs", str(out)],
                           capture_output=True, text=True)  # fmt: skip
    if shutil.which("unshare") is None or probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {probe.stderr.strip()}")
    args = " ".join(["-m", *TINY, "model=vit,dnnbn", "model.depth=1", "trainer.seed=0,1",
                     "trainer.epochs=3", "resume.keep_checkpoint=true"])  # fmt: skip
    script = f"""
mount -t tmpfs -o size={size} tmpfs {out}
cd {out}
{sys.executable} -m vitbn_sweep {args} > {saved}/first.log 2>&1; echo $? > {saved}/first.rc
cp -r {out}/outputs {saved}/first
mount -o remount,size=64m {out}
{sys.executable} -m vitbn_sweep {args} > {saved}/second.log 2>&1; echo $? > {saved}/second.rc
cp -r {out}/outputs {saved}/second
"""
    env = {**os.environ, "VITBN_OUTPUT_DIR": str(out / "outputs"), "VITBN_DATA_DIR": str(data_dir)}
    subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env, check=True, timeout=600)

    first = (saved / "first.log").read_text()
    assert (saved / "first.rc").read_text().strip() == "1", first[-2000:]
    assert "No space left on device" in first
    assert str(out) in first  # where it could not write
    assert "Traceback" not in first  # one line per failure, not a stack
    jobs = [d for d in (saved / "first" / "default").iterdir() if d.is_dir()]
    assert len(jobs) == (4 if size == "3m" else len(jobs))  # at 64k some never began
    failed = 0
    for job in jobs:
        files = [p for p in job.rglob("*") if p.is_file()]
        assert not [p for p in files if p.name.endswith(".tmp")], files  # no temporary left
        assert not [p for p in files if p.stat().st_size == 0], files  # nothing 0-byte
        if (job / store.RESULT_FILE).exists():
            record = store.read_result(job)
            failed += record["status"] == "failed"
            if record["status"] == "failed":
                assert "No space left on device" in record["error"]["message"]
                assert str(out) in record["error"]["message"]  # the file is named
                on_disk = store.read_metrics(job) if (job / store.METRICS_FILE).exists() else []
                assert record["epochs_run"] == len(on_disk)  # not one ahead of metrics.csv
        if (job / store.METRICS_FILE).exists() and (job / store.CHECKPOINT_FILE).exists():
            rows = store.read_metrics(job)
            epoch = resume.load_checkpoint(job / store.CHECKPOINT_FILE)["epoch"]
            assert len(rows) <= epoch  # metrics never ahead of the checkpoint
    assert failed >= 1 or size != "3m"
    second = (saved / "second.log").read_text()
    assert (saved / "second.rc").read_text().strip() == "0", second[-2000:]
    records = [store.read_result(d) for d in (saved / "second" / "default").iterdir() if d.is_dir()]
    assert [(r["status"], r["epochs_run"]) for r in records] == [("completed", 3)] * 4


def test_commands_jsonl_with_a_line_cut_by_a_crash_reads_the_whole_lines(tmp_path: Path) -> None:
    from vitbn_sweep.store.record import commands, last_start

    start = {"event": "start", "at": "2026-12-05T06:00:00+00:00", "argv": ["x", "-m"]}
    (tmp_path / store.COMMANDS_FILE).write_text(json.dumps(start) + '\n{"event": "end", "at"')
    assert commands(tmp_path) == [start]
    assert last_start(tmp_path) == 1796450400.0
    assert commands(tmp_path / "missing") == []
