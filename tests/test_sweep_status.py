"""The sweep status read from a sweep dir (states, ETA), the live watcher, `analysis status`."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from tests.conftest import TINY
from vitbn_sweep.identity import job_dirname
from vitbn_sweep.store import (
    CLAIM_FILE,
    COMMANDS_FILE,
    JOBS_FILE,
    SCHEMA_VERSION,
    STATES,
    claims,
    write_metrics,
    write_result,
)
from vitbn_sweep.store.record import last_start
from vitbn_sweep.store.status import duration, progress_line, read_sweep
from vitbn_sweep.store.watch import SweepWatcher


def job(
    sweep: Path,
    name: str,
    *,
    epochs: int = 4,
    done: int = 0,
    seconds: float = 10.0,
    status: str | None = None,
    claim: bool = False,
    depth: int = 2,
    hydra: bool = True,
    device: str | None = None,
    chip: str | None = None,
    ended_at: str | None = None,
    checkpoint: bool = True,
) -> Path:
    """A job dir as a job leaves it: ``done`` epochs of ``seconds`` each, maybe a result;
    an unended job with epochs has its checkpoint unless ``checkpoint=False``."""
    path = sweep / name
    path.mkdir(parents=True)
    config = {"trainer": {"epochs": epochs}, "model": {"name": "vit", "depth": depth}}
    if hydra:
        (path / ".hydra").mkdir()
        (path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    rows = [
        {"epoch": e, "test_acc": 0.5 + e / 100, "epoch_seconds": seconds}
        for e in range(1, done + 1)
    ]
    if rows:
        write_metrics(path, rows)
        if checkpoint and not status:
            (path / "checkpoint.pt").write_bytes(b"")  # only its presence is read
    if claim:  # held by this (live) process
        owner = claims.this_owner("test-token")
        (path / CLAIM_FILE).write_text(json.dumps({"owner": owner}))
    if status:
        record = {
            "schema_version": SCHEMA_VERSION,
            "status": status,
            "config": config,
            "epochs_run": done,
            "total_seconds": done * seconds,
            "diverged_at": {"epoch": done + 1, "step": 7} if status == "diverged" else None,
            "error": {"type": "RuntimeError", "message": "boom"} if status == "failed" else None,
            "device": device,
            "host": {"hostname": "vm", "cpu_id": chip} if chip else {"hostname": "vm"},
            "ended_at": ended_at,
        }
        write_result(path, record)
    return path


def ended(status: str, **fields: object) -> dict[str, object]:
    """A result record as a job writes it (the fields a reader checks, and ``fields``)."""
    return {"schema_version": SCHEMA_VERSION, "status": status, "config": {}, **fields}


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """One job in every state; jobs.json lists them all (and one not started)."""
    root = tmp_path / "grid"
    job(root, "a=completed", done=4, status="completed")
    job(root, "a=diverged", done=2, status="diverged")
    job(root, "a=failed", done=1, status="failed")
    job(root, "a=running", done=2, claim=True)
    job(root, "a=incomplete", done=1)
    (root / "report").mkdir()  # not a job
    names = ["a=completed", "a=diverged", "a=failed", "a=running", "a=incomplete", "a=new"]
    (root / JOBS_FILE).write_text(json.dumps(names))
    started = time.time() - 100  # the command started before its jobs wrote anything
    os.utime(root / JOBS_FILE, (started, started))
    (root / "multirun.yaml").write_text(yaml.safe_dump({"trainer": {"epochs": 4}, "hydra": {}}))
    return root


def test_every_job_is_classified_with_its_progress(sweep: Path) -> None:
    status = read_sweep(sweep)
    jobs = {j.name: j for j in status.jobs}
    assert {n: j.state for n, j in jobs.items()} == {
        "a=completed": "completed",
        "a=diverged": "diverged",
        "a=failed": "failed",
        "a=running": "running",
        "a=incomplete": "incomplete",
        "a=new": "not started",
    }
    assert status.listed and status.counts() == dict.fromkeys(STATES, 1) and status.done == 3
    assert (jobs["a=running"].epochs_done, jobs["a=running"].epochs_planned) == (2, 4)
    assert jobs["a=running"].test_acc == pytest.approx(0.52)
    assert jobs["a=new"].epochs_planned == 4  # from the sweep's multirun.yaml
    assert jobs["a=diverged"].detail == "at epoch 3"
    assert jobs["a=failed"].detail == "RuntimeError: boom"
    assert jobs["a=completed"].seconds == 40.0


def test_without_jobs_json_only_job_dirs_count(sweep: Path) -> None:
    (sweep / JOBS_FILE).unlink()
    status = read_sweep(sweep)
    assert not status.listed
    assert sorted(j.name for j in status.jobs) == [
        "a=completed",
        "a=diverged",
        "a=failed",
        "a=incomplete",
        "a=running",
    ]


def test_eta_from_timed_epochs_and_jobs_at_once(sweep: Path) -> None:
    now = time.time()
    os.utime(sweep / "a=running" / "metrics.csv", (now - 4, now - 4))
    os.utime(sweep / "a=running" / "checkpoint.pt", (now - 4, now - 4))  # written with it
    os.utime(sweep / "a=running" / ".hydra" / "config.yaml", (now - 30, now - 30))
    os.utime(sweep / "a=running" / CLAIM_FILE, (now - 30, now - 30))
    status = read_sweep(sweep, now=now)
    # 10 s per epoch everywhere: running 2 left minus 4 s into its third, incomplete 3 left,
    # not started 4 (planned from multirun.yaml); one job runs (one claim): ETA = compute
    assert status.remaining_s == pytest.approx(2 * 10 - 4 + 3 * 10 + 4 * 10)
    assert (status.parallel, status.eta_s) == (1, status.remaining_s)
    assert read_sweep(sweep, now=now, parallel=2).eta_s == pytest.approx(86 / 2)
    assert progress_line(status).endswith(f"| ETA {duration(86)}") and duration(86) == "1m26s"


def test_a_job_whose_checkpoint_is_gone_starts_over_in_the_eta_and_says_so(
    sweep: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Epochs in metrics.csv without checkpoint.pt (a checkout that carried no checkpoint)
    cannot be continued: the job's every epoch is left, and the table says why."""
    from analysis.cli import main

    now = time.time()
    before = read_sweep(sweep, now=now).remaining_s
    (sweep / "a=incomplete" / "checkpoint.pt").unlink()
    status = read_sweep(sweep, now=now)
    gone = {j.name: j for j in status.jobs}["a=incomplete"]
    assert gone.starts_over and gone.state == "incomplete" and gone.epochs_done == 1
    assert status.remaining_s == pytest.approx(before + 10)  # its one epoch is left again
    assert not any(j.starts_over for j in status.jobs if j.name != "a=incomplete")
    assert main(["status", str(sweep)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "a=incomplete" in line)
    assert row.split()[:2] == ["incomplete", "1/4"]
    assert row.endswith("a=incomplete  (no checkpoint: starts over at epoch 1)")


def test_eta_uses_the_epoch_time_of_the_same_depth(tmp_path: Path) -> None:
    root = tmp_path / "grid"
    job(root, "d=1", depth=1, done=2, seconds=2.0, status="completed", epochs=2)
    job(root, "d=7", depth=7, done=1, seconds=30.0, epochs=3)
    job(root, "d=7,s=1", depth=7, done=0, epochs=3)
    job(root, "d=1,s=1", depth=1, done=0, epochs=2)
    status = read_sweep(root, now=time.time())
    assert status.remaining_s == pytest.approx(2 * 30 + 3 * 30 + 2 * 2)


def resolve_round(root: Path) -> None:
    """A grid that ran on a GPU, then on a CPU at 10 s per epoch and depth; a new command
    (jobs.json) adds seeds at depths 2, 4 and 6, and only depth 2 has timed an epoch."""
    for d in (1, 2, 3, 4):
        job(root, f"d={d},s=0", depth=d, done=2, seconds=1.0, status="completed",
            device="cuda", ended_at="2026-11-30T10:00:00+00:00")  # fmt: skip
        job(root, f"d={d},s=1", depth=d, done=2, seconds=10.0 * d, status="completed",
            device="cpu", ended_at=f"2026-12-01T1{d}:00:00+00:00")  # fmt: skip
    job(root, "d=2,s=2", depth=2, done=1, seconds=40.0, claim=True)  # twice as slow now
    for d in (4, 6):
        job(root, f"d={d},s=2", depth=d, hydra=False, epochs=2)
    (root / JOBS_FILE).write_text(json.dumps(["d=2,s=2", "d=4,s=2", "d=6,s=2"]))


def test_eta_prices_untimed_jobs_from_the_sweeps_earlier_jobs_on_the_newest_device(
    tmp_path: Path,
) -> None:
    root = tmp_path / "grid"
    resolve_round(root)
    status = read_sweep(root, now=time.time())
    assert {j.machine for j in status.earlier} == {"cpu"} and len(status.earlier) == 4
    assert status.times is not None and status.times.scale == pytest.approx(2.0)
    # depth 2 runs at 40 s: at most 1 epoch left; depth 4 from the CPU grid, scaled: 2 x 80;
    # depth 6 on the CPU grid's line (10 s per depth), scaled: 2 x 120
    assert status.remaining_s == pytest.approx(40 + 2 * 80 + 2 * 120, abs=40)
    assert status.remaining_s > 2 * 80 + 2 * 120


def test_eta_prices_at_the_newest_chip_of_a_cpu_name_where_it_timed_two_depths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from analysis.cli import main

    root = tmp_path / "grid"
    for d in (1, 2, 3, 4):  # a CPU whose record names no chip: 10 s per epoch and depth
        job(root, f"d={d},s=1", depth=d, done=2, seconds=10.0 * d, status="completed",
            device="cpu", ended_at=f"2026-12-01T1{d}:00:00+00:00")  # fmt: skip
    for d in (1, 3):  # then a slower chip of the same name: 25 s per epoch and depth
        job(root, f"d={d},s=2", depth=d, done=2, seconds=25.0 * d, status="completed",
            device="cpu", chip="zen3", ended_at=f"2026-12-02T0{d}:00:00+00:00")  # fmt: skip
    for d in (2, 5):
        job(root, f"d={d},s=3", depth=d, epochs=2)
    (root / JOBS_FILE).write_text(json.dumps(["d=2,s=3", "d=5,s=3"]))
    status = read_sweep(root, now=time.time())
    # zen3 first; the chipless CPU only for the depths zen3 cannot price (none here)
    assert [j.machine for j in status.earlier] == ["cpu (zen3)"] * 2 + ["cpu"] * 4
    # on zen3's line, 25 s per epoch and depth: 2 epochs at depth 2, 2 at depth 5
    assert status.remaining_s == pytest.approx(2 * 50 + 2 * 125)
    assert main(["status", str(root)]) == 0
    assert "2 earlier job(s) of the sweep on cpu (zen3) at depths 1,3" in capsys.readouterr().out


def test_eta_falls_back_per_depth_to_the_devices_other_machines_as_resolve_prices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sweep just moved to a new chip that has timed one depth: the depths it cannot
    price come from the other CPU's times (measured, or its line), as resolve's cost does,
    not from the one depth scaled in proportion (zen3: 25 s at depth 1 would say 50, 125)."""
    from analysis.cli import main

    root = tmp_path / "grid"
    for d in (1, 2, 3, 4):  # a CPU whose record names no chip: 10 s per epoch and depth
        job(root, f"d={d},s=1", depth=d, done=2, seconds=10.0 * d, status="completed",
            device="cpu", ended_at=f"2026-12-01T1{d}:00:00+00:00")  # fmt: skip
    job(root, "d=1,s=2", depth=1, done=2, seconds=25.0, status="completed", device="cpu",
        chip="zen3", ended_at="2026-12-02T01:00:00+00:00")  # fmt: skip
    # another device: never used for a CPU job
    job(root, "d=1,s=3", depth=1, done=2, seconds=7.0, status="completed", device="cuda",
        ended_at="2026-12-01T09:00:00+00:00")  # fmt: skip
    for d in (2, 5):
        job(root, f"d={d},s=3", depth=d, epochs=2)
    (root / JOBS_FILE).write_text(json.dumps(["d=2,s=3", "d=5,s=3"]))
    status = read_sweep(root, now=time.time())
    assert [j.machine for j in status.earlier] == ["cpu (zen3)"] + ["cpu"] * 4
    assert status.times is not None and status.times.at(1) == pytest.approx(25.0)
    # depth 2 measured on the other CPU (20 s), depth 5 on its line (50 s): 2 epochs each
    assert status.remaining_s == pytest.approx(2 * 20 + 2 * 50)
    assert main(["status", str(root)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "epoch times of untimed jobs: 1 earlier job(s) of the sweep on cpu (zen3) at depth 1, "
        "else a line in depth, else per depth cpu"
    )


def test_the_watcher_and_analysis_status_price_a_resolve_round_from_the_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from analysis.cli import main

    root = tmp_path / "grid"
    resolve_round(root)
    names = json.loads((root / JOBS_FILE).read_text())
    watcher = SweepWatcher(root, names, stream=io.StringIO(), interval_s=3600)
    watcher.start()
    status = watcher.stop()
    assert len(status.earlier) == 4 and status.remaining_s is not None
    assert status.remaining_s > 2 * 80 + 2 * 120
    assert main(["status", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == (
        "epoch times of untimed jobs: this command's jobs at depth 2, else 4 earlier job(s) "
        "of the sweep on cpu at depths 1,2,3,4, scaled x2.00 to this command's speed, "
        "else a line in depth"
    )


def test_no_eta_before_the_first_epoch_ends(tmp_path: Path) -> None:
    root = tmp_path / "grid"
    job(root, "a=1", claim=True)
    (root / JOBS_FILE).write_text(json.dumps(["a=1", "a=2"]))
    status = read_sweep(root)
    assert status.remaining_s is None and status.eta_s is None
    assert progress_line(status).endswith("| ETA after the first epoch")
    assert "0/2 jobs done" in progress_line(status)


def test_a_claim_whose_owner_is_gone_reads_incomplete(sweep: Path) -> None:
    owners = []

    def alive(owner: dict) -> bool:
        owners.append(owner)
        return False

    status = read_sweep(sweep, alive=alive)
    assert {j.name: j.state for j in status.jobs}["a=running"] == "incomplete"
    assert owners == [claims.this_owner("test-token")]


def test_a_claimed_job_waits_until_it_writes_files_of_its_own(tmp_path: Path) -> None:
    root = tmp_path / "grid"
    (root / "a=1").mkdir(parents=True)
    claims.claim(root / "a=1", claims.this_owner("t"))  # claimed at launch by the sweep command
    old = job(root, "a=2", done=1, claim=True)  # cut by an earlier command, launched again
    os.utime(old / "metrics.csv", (1, 1))
    os.utime(old / ".hydra" / "config.yaml", (1, 1))
    (root / JOBS_FILE).write_text(json.dumps(["a=1", "a=2"]))
    assert [j.state for j in read_sweep(root).jobs] == ["not started", "not started"]
    (root / "a=1" / ".hydra").mkdir()
    (root / "a=1" / ".hydra" / "config.yaml").write_text("trainer: {epochs: 3}\n")
    assert [j.state for j in read_sweep(root).jobs] == ["running", "not started"]


def test_a_damaged_claim_holds_nothing_here_as_in_claims(tmp_path: Path) -> None:
    root = tmp_path / "grid"
    for name, text in (("a=1", "{}"), ("a=2", '{"owner": "x"}'), ("a=3", '{"own')):
        (root / name).mkdir(parents=True)
        (root / name / CLAIM_FILE).write_text(text)
        (root / name / ".hydra").mkdir()
        (root / name / ".hydra" / "config.yaml").write_text("trainer: {epochs: 3}\n")
        assert claims.read(root / name) is None
    # no live claim: a job dir with files of its own and no result is cut short
    assert {j.state for j in read_sweep(root).jobs} == {"incomplete"}


def test_a_job_not_started_plans_from_its_dirname_then_from_the_sweep(tmp_path: Path) -> None:
    root = tmp_path / "grid"
    root.mkdir()
    (root / JOBS_FILE).write_text(json.dumps(["model.depth=3,trainer.epochs=7", "model.depth=2"]))
    (root / "multirun.yaml").write_text("trainer: {epochs: 4}\nmodel: {depth: 1}\n")
    overridden, default = read_sweep(root).jobs
    assert (overridden.state, overridden.epochs_planned, overridden.depth) == ("not started", 7, 3)
    assert (default.epochs_planned, default.depth) == (4, 2)


# --- the watcher ---------------------------------------------------------------------------


def test_watcher_prints_each_ended_job_once_and_progress_lines(sweep: Path) -> None:
    out, names = io.StringIO(), json.loads((sweep / JOBS_FILE).read_text())
    watcher = SweepWatcher(sweep, [sweep / n for n in names], stream=out, interval_s=3600)
    watcher.start()  # the thread sleeps an hour: the test polls
    first = out.getvalue()
    assert first == "sweep grid: 6 jobs, 3 already ended\n"
    watcher.poll()  # first poll: the progress line
    assert out.getvalue().count("\n") == 2 and "3/6 jobs done" in out.getvalue()
    watcher.poll()  # nothing new, and the log interval has not passed: silent
    assert out.getvalue().count("\n") == 2
    write_result(sweep / "a=running", ended("completed", total_seconds=31.0))
    watcher.poll()
    lines = out.getvalue().splitlines()[2:]
    assert lines[0] == "sweep grid: completed: a=running (2/4 epochs, test_acc 0.5200, 31s)"
    assert (
        lines[1].startswith("sweep grid: [")
        and "4/6 jobs done (2 completed, 1 diverged" in (lines[1])
    )
    final = watcher.stop()
    assert final.done == 4 and "4/6 jobs done" in out.getvalue().splitlines()[-1]
    assert out.getvalue().count("completed: a=running") == 1  # announced once
    assert "a=completed" not in out.getvalue()  # ended before the watch: not announced
    assert "\r" not in out.getvalue()


def test_watcher_thread_reports_without_being_polled(sweep: Path) -> None:
    out = io.StringIO()
    names = json.loads((sweep / JOBS_FILE).read_text())
    with SweepWatcher(sweep, names, stream=out, interval_s=0.05) as watcher:
        write_result(sweep / "a=incomplete", ended("failed", error={"type": "OSError"}))
        deadline = time.monotonic() + 10
        while "failed: a=incomplete" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watcher.tty is False  # a StringIO is no terminal
    text = out.getvalue()
    assert "sweep grid: failed: a=incomplete (1/4 epochs, test_acc 0.5100) - OSError\n" in text
    assert text.splitlines()[-1].startswith("sweep grid: [") and "\r" not in text


@pytest.mark.parametrize("tty,lines", [(True, 3), (False, 2)])
def test_a_terminal_gets_a_line_per_epoch_a_log_file_only_per_job(
    sweep: Path, tty: bool, lines: int
) -> None:
    out = io.StringIO()
    watcher = SweepWatcher(sweep, ["a=running"], stream=out, tty=tty, interval_s=3600)
    watcher.start()
    watcher.poll()
    write_metrics(sweep / "a=running", [{"epoch": e, "epoch_seconds": 1.0} for e in (1, 2, 3)])
    watcher.poll()  # an epoch ended: news on a terminal, not worth a log line
    assert out.getvalue().count("\n") == lines


@pytest.mark.slow
def test_watcher_follows_a_real_sweep(tmp_path: Path, data_dir: Path) -> None:
    overrides = ["model=vit,vitbnffn", "model.depth=1", *TINY, "sweep_name=live"]
    fixed = [o for o in overrides if not o.startswith("model=")]
    names = [job_dirname([*fixed, f"model={m}"]) for m in ("vit", "vitbnffn")]
    sweep = tmp_path / "outputs" / "live"
    env = {**os.environ, "VITBN_OUTPUT_DIR": str(tmp_path / "outputs")}
    cmd = [sys.executable, "-m", "vitbn_sweep", "-m", *overrides]
    out = io.StringIO()
    watcher = SweepWatcher(sweep, [sweep / n for n in names], stream=out, interval_s=0.1)
    watcher.start()
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    status = watcher.stop()
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.getvalue()
    assert status.done == 2 and [j.state for j in status.jobs] == ["completed", "completed"]
    for name in names:
        assert text.count(f"completed: {name} (1/1 epochs, test_acc ") == 1
    assert text.splitlines()[0] == "sweep live: 2 jobs, 0 already ended"
    assert "2/2 jobs done (2 completed, 0 diverged, 0 failed)" in text.splitlines()[-1]


# --- analysis status -----------------------------------------------------------------------


def test_analysis_status_prints_the_table_and_the_eta(
    sweep: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from analysis.cli import main

    assert main(["status", str(sweep)]) == 0
    out = capsys.readouterr().out
    rows = {word: line for line in out.splitlines() for word in line.split() if "a=" in word}
    assert rows["a=running"].split()[:2] == ["running", "2/4"]
    assert "last write" in rows["a=running"] and rows["a=new"].split()[:3] == [
        "not",
        "started",
        "-/4",
    ]
    assert rows["a=diverged"].startswith("diverged ") and "a=diverged  (at epoch 3)" in out
    assert "1 completed, 1 diverged, 1 failed, 1 running, 1 incomplete, 1 not started" in out
    assert "ETA " in out.splitlines()[-1] and "1 job(s) at once" in out


def test_analysis_status_reads_a_killed_runs_claim_as_incomplete(
    sweep: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from analysis.cli import main

    gone = subprocess.Popen([sys.executable, "-c", "pass"])  # a process that has ended
    gone.wait()
    owner = {**claims.this_owner("t"), "pid": gone.pid}  # killed: its pid no longer runs
    (sweep / "a=running" / CLAIM_FILE).write_text(json.dumps({"owner": owner}))
    assert main(["status", str(sweep)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["incomplete", "2/4"] in [row[:2] for row in rows if "a=running" in row]


def test_analysis_status_of_a_missing_sweep_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from analysis.cli import main

    assert main(["status", str(tmp_path / "nope")]) == 2
    assert "no such sweep directory" in capsys.readouterr().err


def test_the_command_start_comes_from_commands_jsonl_not_a_checkout(sweep: Path) -> None:
    """A checkout (git, rsync) of the sweep dir resets jobs.json's mtime to now; the claimed
    job that wrote its epochs since the command started still reads running."""
    started = time.time() - 100
    record = {"event": "start", "at": datetime.fromtimestamp(started, timezone.utc).isoformat()}
    ended = {"event": "end", "at": datetime.now(timezone.utc).isoformat()}
    (sweep / COMMANDS_FILE).write_text(
        "\n".join([json.dumps(record), json.dumps(ended), '{"event": "sta']) + "\n"  # cut line
    )
    os.utime(sweep / JOBS_FILE)  # touched now, as a checkout does
    assert last_start(sweep) == pytest.approx(started, abs=1)
    assert {j.name: j.state for j in read_sweep(sweep).jobs}["a=running"] == "running"
    (sweep / COMMANDS_FILE).unlink()  # an older sweep without it: jobs.json's mtime it is
    assert {j.name: j.state for j in read_sweep(sweep).jobs}["a=running"] == "not started"


def test_the_grid_is_every_commands_jobs_and_starts_from_an_old_jobs_json(tmp_path: Path) -> None:
    """grid.json: the union of every command's jobs, first planned first; a sweep dir
    from before it existed starts it from the latest command's jobs.json."""
    from omegaconf import OmegaConf

    from vitbn_sweep.store import GRID_FILE
    from vitbn_sweep.store.record import SweepPlan, planned_jobs, start

    def plan(*names: str) -> SweepPlan:
        jobs = [[name] for name in names]
        return SweepPlan(jobs=jobs, job_dirs={(n,): tmp_path / n for n in names})

    (tmp_path / JOBS_FILE).write_text(json.dumps(["a=1", "a=2"]))  # an old sweep's command
    assert planned_jobs(tmp_path) == ["a=1", "a=2"]
    start(tmp_path, OmegaConf.create({}), plan("a=3", "a=1"))
    start(tmp_path, OmegaConf.create({}), plan("a=2"))
    assert json.loads((tmp_path / GRID_FILE).read_text()) == ["a=1", "a=2", "a=3"]
    assert json.loads((tmp_path / JOBS_FILE).read_text()) == ["a=2"]  # the latest command's
    assert planned_jobs(tmp_path / "none") is None
