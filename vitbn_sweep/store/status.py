"""Where a sweep stands, read from its directory alone (``sweep_watch`` reports it live).

Every file read here is written atomically by the job (temporary file + rename), so
reading while jobs run is safe. Per job directory ``<sweep_dir>/<job>/``:

    result.json          the job ended: completed | diverged | failed (its ``status``)
    .claim.json          no result yet and a live run holds the job: running
    metrics.csv          one row per finished epoch: progress, ``epoch_seconds`` for the ETA
    .hydra/config.yaml   the job's config (planned epochs, depth) before result.json exists

A job directory with neither ``result.json`` nor a live claim is *incomplete*: cut
short, or run by a launcher that writes no claim. ``<sweep_dir>/jobs.json`` (a JSON
list of job directory names: every job of the latest command), when present, also
gives the jobs that have no directory yet: *not started*. Without it only jobs with
a directory are known.

An unended job with epochs in ``metrics.csv`` but no ``checkpoint.pt`` cannot continue
them: it *starts over* (all its epochs count as left).

The ETA: seconds per epoch (the job's own timed epochs, else ``EpochTimes``: this
command's jobs at the same depth, the sweep's earlier jobs there, a line in depth),
times the epochs each unfinished job has left, divided by how many jobs run at once.
The sweep's earlier jobs are the ended ones in its directory outside the job list, on
the machine the newest of them ran on (``results.machine``: the device and its hardware),
then, for the depths that machine cannot price, on the other machines of its device.
No ETA before an epoch of the sweep is timed.

The words for all of it live here too, so the watcher and ``analysis status`` say a duration,
an ETA and a job's epochs alike: ``progress_line`` and ``job_line`` (the watcher),
``status_text`` (the table of ``analysis status``, with the basis of the ETA).

Imports nothing heavy (no torch, no pandas): the sweeper may run on a login node.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitbn_sweep import store
from vitbn_sweep.epoch_times import EpochTimes, machine_order
from vitbn_sweep.identity import dig, split_overrides
from vitbn_sweep.results import machine
from vitbn_sweep.store import (
    CHECKPOINT_FILE,
    DIVERGED,
    FAILED,
    HYDRA_CONFIG,
    INCOMPLETE,
    JOBS_FILE,
    METRICS_FILE,
    MULTIRUN_FILE,
    NOT_STARTED,
    RUNNING,
    STATES,
    STATUSES,
    claims,
)
from vitbn_sweep.store.record import last_start, listed_jobs

STARTS_OVER = "no checkpoint: starts over at epoch 1"
NO_MACHINE = "device not recorded"  # an earlier job whose result names no machine
Alive = Callable[[Mapping[str, Any]], bool]  # is a claim's owner (a process, a Slurm job) alive?


@dataclass(frozen=True)
class JobStatus:
    """One job as its directory shows it now."""

    name: str
    state: str
    epochs_done: int = 0
    epochs_planned: int | None = None
    epoch_seconds: tuple[float, ...] = ()
    test_acc: float | None = None  # the last finished epoch's
    last_active: float | None = None  # unix time of the newest file the job wrote
    seconds: float | None = None  # total run time of an ended job
    depth: int | None = None
    detail: str = ""  # "at epoch 4" for a diverged job, the error for a failed one
    starts_over: bool = False  # unended, epochs in metrics.csv but no checkpoint to continue
    machine: str | None = None  # an ended job's device and hardware, from its result.json
    ended_at: str | None = None  # an ended job's ISO time

    @property
    def ended(self) -> bool:
        return self.state in STATUSES


@dataclass(frozen=True)
class SweepStatus:
    """Every job of a sweep, and the ETA; ``listed``: the job list came from jobs.json."""

    sweep_dir: Path
    jobs: tuple[JobStatus, ...]
    listed: bool
    parallel: int  # jobs assumed to run at once for the ETA
    remaining_s: float | None  # compute left, summed over jobs; None before any timed epoch
    earlier: tuple[JobStatus, ...]  # the sweep's earlier jobs that priced untimed ones
    times: EpochTimes  # seconds per epoch by depth, that priced the jobs left

    def counts(self) -> dict[str, int]:
        return {state: sum(job.state == state for job in self.jobs) for state in STATES}

    @property
    def eta_s(self) -> float | None:
        return None if self.remaining_s is None else self.remaining_s / self.parallel

    @property
    def done(self) -> int:
        return sum(job.ended for job in self.jobs)


# --- reading one job ----------------------------------------------------------------------


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def dirname_value(name: str, key: str) -> str | None:
    """The value of ``key`` in a job directory name made of overrides (``a=1,key=3``)."""
    for override in split_overrides(name):
        found, equals, value = override.partition("=")
        if equals and found == key:
            return value
    return None


def _config_int(name: str, dotted: str, own: Sequence[Any], sweep: Any) -> int | None:
    """``dotted`` from the job's own configs, else its directory name, else the sweep's."""
    for config in own:
        value = _int(dig(config, dotted))
        if value is not None:
            return value
    text = dirname_value(name, dotted)
    return int(text) if text is not None and text.isdigit() else _int(dig(sweep, dotted))


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _ended_detail(result: Mapping[str, Any]) -> str:
    if result.get("status") == DIVERGED:
        return f"at epoch {dig(result, 'diverged_at.epoch')}"
    if result.get("status") == FAILED:
        error = result.get("error") or {}
        kind, message = error.get("type") or "error", error.get("message")
        return f"{kind}: {message}" if message else str(kind)
    return ""


def _files(job_dir: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]], str]:
    """(result, metrics rows, problem): a damaged file is no data, and says what is wrong."""
    try:
        result, rows = store.ended(job_dir)
        return result, rows, ""
    except store.DamagedFile as exc:
        problem = f"{exc.path.name}: {exc.why}"
    try:
        rows = store.read_metrics(job_dir)
    except store.DamagedFile:
        rows = []
    return None, rows, problem


def _live_claim(job_dir: Path, alive: Alive | None) -> dict[str, Any] | None:
    """The claim of ``job_dir`` (``claims.read``) if its owner still runs (when ``alive``
    can tell)."""
    claim = claims.read(job_dir)
    return claim if claim is not None and (alive is None or alive(claim["owner"])) else None


def _unended_state(claimed: bool, active: float | None, since: float | None, live: bool) -> str:
    """running, incomplete or not started, for a job without a result.

    ``active``: when the job last wrote a file of its own (not its claim); ``since``:
    when the latest command started (None: unknown). A claimed job that wrote nothing
    since is waiting for its turn: not started. ``live``: the command is known to run
    now (the watcher), so a job active since it started runs, claimed or not.
    """
    started = active is not None and (since is None or active >= since)
    if claimed or (live and started):
        return RUNNING if started else NOT_STARTED
    return INCOMPLETE if active is not None else NOT_STARTED


def read_job(
    job_dir: Path,
    name: str,
    sweep_config: Mapping[str, Any] | None = None,
    alive: Alive | None = None,
    since: float | None = None,
    live: bool = False,
) -> JobStatus:
    """The status of one job from its directory (which may not exist: not started).

    ``alive(owner)``: whether a claim's owner still runs (without it, any claim is live);
    ``since``, ``live``: when the latest command started, and whether it runs now
    (see ``_unended_state``).
    """
    result, rows, problem = _files(job_dir)
    claim = _live_claim(job_dir, alive)
    if result and claim and str(claim.get("claimed_at", "")) > str(result.get("ended_at", "")):
        result = None  # claimed again since it ended: a rerun (resume.rerun_failed) runs it
    own = [result and result.get("config"), store.job_config(job_dir)]
    seconds = [s for s in (store.finite(r["epoch_seconds"]) for r in rows) if s is not None]
    own_files = (METRICS_FILE, CHECKPOINT_FILE, str(HYDRA_CONFIG))
    active = max((t for t in (_mtime(job_dir / f) for f in own_files) if t), default=None)
    # Its epochs cannot be continued: a rerun (or the run now, before its first epoch
    # rewrites metrics.csv) begins at epoch 1 (say, a checkout that carried no checkpoint).
    starts_over = not result and bool(rows) and not (job_dir / CHECKPOINT_FILE).is_file()
    if result:
        state = str(result["status"])
    else:
        state = _unended_state(claim is not None, active, since, live)
    detail = _ended_detail(result) if result else problem or (STARTS_OVER if starts_over else "")
    return JobStatus(
        name=name,
        state=state,
        epochs_done=len(rows),
        epochs_planned=_config_int(name, "trainer.epochs", own, sweep_config),
        epoch_seconds=tuple(seconds),
        test_acc=store.finite(rows[-1].get("test_acc")) if rows else None,
        last_active=active,
        seconds=store.finite(result.get("total_seconds")) if result else None,
        depth=_config_int(name, "model.depth", own, sweep_config),
        detail=detail,
        starts_over=starts_over,
        machine=machine(result) if result else None,
        ended_at=str(result["ended_at"]) if result and result.get("ended_at") else None,
    )


# --- the sweep ----------------------------------------------------------------------------


def found_jobs(sweep_dir: Path) -> list[str]:
    """Job directories under ``sweep_dir`` (``store.job_dirs``), as names relative to it."""
    found = store.job_dirs(sweep_dir)
    return [p.relative_to(sweep_dir).as_posix() for p in found if p != Path(sweep_dir)]


def sweep_config(sweep_dir: Path) -> dict[str, Any]:
    """The sweep's composed config from Hydra's ``multirun.yaml`` (without ``hydra``)."""
    doc = store.read_yaml(sweep_dir / MULTIRUN_FILE)
    return {k: v for k, v in doc.items() if k != "hydra"} if isinstance(doc, dict) else {}


def earlier_jobs(
    sweep_dir: Path, names: Iterable[str], sweep_config: Mapping[str, Any] | None = None
) -> tuple[JobStatus, ...]:
    """The sweep's ended jobs outside ``names`` with timed epochs, on the machines of
    ``epoch_times.machine_order``, the one the newest of them ran on first (a sweep begun on
    a GPU and continued on a CPU is priced at the CPU's, and one continued on a slower CPU of
    the same name at that CPU's, told apart by its chip; the other CPUs fill the depths it
    cannot price)."""
    skip = set(names)
    ended = [
        job
        for name in found_jobs(sweep_dir)
        if name not in skip
        for job in [read_job(sweep_dir / name, name, sweep_config)]
        if job.ended and job.epoch_seconds
    ]
    machines = machine_order((job.machine, job.ended_at) for job in ended)
    return tuple(job for m in machines for job in ended if job.machine == m)


def _by_machine(earlier: Iterable[JobStatus]) -> dict[str | None, list[JobStatus]]:
    """The sweep's earlier jobs by the machine they ran on, in ``earlier_jobs``' order: the
    machine that prices first, first."""
    machines: dict[str | None, list[JobStatus]] = {}
    for job in earlier:
        machines.setdefault(job.machine, []).append(job)
    return machines


def epoch_times(jobs: Iterable[JobStatus], earlier: Sequence[JobStatus] = ()) -> EpochTimes:
    """Seconds per epoch by depth, from these jobs' timed epochs and the earlier jobs'
    (``earlier_jobs``: its first machine's, then per depth the others')."""
    timed = [[(j.depth, j.epoch_seconds) for j in on] for on in _by_machine(earlier).values()]
    first, *others = timed or [[]]
    return EpochTimes.build(((j.depth, j.epoch_seconds) for j in jobs), first, others)


def remaining_seconds(jobs: Sequence[JobStatus], now: float, times: EpochTimes) -> float | None:
    """Compute left over the unfinished jobs, in seconds; None before any epoch was timed
    (by these jobs or, for the untimed ones, by the sweep's earlier jobs: ``times``)."""
    if times.overall is None:
        return None
    planned = [j.epochs_planned for j in jobs if j.epochs_planned is not None]
    typical = statistics.median_low(planned) if planned else None
    total = 0.0
    for job in jobs:
        epochs = job.epochs_planned if job.epochs_planned is not None else typical
        if job.ended or epochs is None:
            continue
        per_epoch = (
            statistics.fmean(job.epoch_seconds) if job.epoch_seconds else times.at(job.depth)
        )
        if per_epoch is None:
            continue
        left = max(epochs - (0 if job.starts_over else job.epochs_done), 0) * per_epoch
        if job.state == RUNNING and job.last_active is not None and left:
            left -= min(max(now - job.last_active, 0.0), per_epoch)  # into its current epoch
        total += left
    return total


def read_sweep(
    sweep_dir: str | Path,
    job_names: Sequence[str] | None = None,
    *,
    now: float | None = None,
    parallel: int | None = None,
    live_since: float | None = None,
    alive: Alive | None = None,
    earlier: Sequence[JobStatus] | None = None,
) -> SweepStatus:
    """The status of every job of ``sweep_dir``.

    ``job_names``: the jobs (directory names relative to ``sweep_dir``); default
    ``jobs.json``, else every job directory found. ``parallel``: how many jobs run at
    once (default: the jobs running now, at least 1). ``live_since``: when the sweep
    command that runs now started (the watcher's case): a job that wrote a file of its
    own since then is running, with or without a claim. Without it, the latest command
    started when ``commands.jsonl`` says (else when it wrote ``jobs.json``), and a claimed
    job that wrote nothing since is waiting (not started). ``alive(owner)``: whether a
    claim's owner still runs (a claim left by a killed run then reads incomplete);
    without it every claim is live. ``earlier``: the sweep's earlier jobs for the ETA
    (default: read now with ``earlier_jobs``; none when there is no job list).
    """
    sweep_dir = Path(sweep_dir)
    now = time.time() if now is None else now
    listed = listed_jobs(sweep_dir)
    names = list(job_names or listed or found_jobs(sweep_dir))
    since = live_since if live_since is not None else last_start(sweep_dir)
    if since is None:  # a sweep written before commands.jsonl recorded its start
        since = _mtime(sweep_dir / JOBS_FILE)
    defaults = sweep_config(sweep_dir)
    live = live_since is not None
    jobs = [read_job(sweep_dir / name, name, defaults, alive, since, live) for name in names]
    running = sum(job.state == RUNNING for job in jobs)
    at_once = max(parallel or running, 1)
    known = job_names is not None or listed is not None
    if earlier is None:
        earlier = earlier_jobs(sweep_dir, names, defaults) if known else ()
    times = epoch_times(jobs, earlier)
    remaining = remaining_seconds(jobs, now, times)
    return SweepStatus(sweep_dir, tuple(jobs), known, at_once, remaining, tuple(earlier), times)


# --- words --------------------------------------------------------------------------------


def duration(seconds: float) -> str:
    """``45s``, ``12m05s``, ``3h04m``, ``2d03h``."""
    s = max(int(round(seconds)), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def eta_text(status: SweepStatus) -> str:
    if status.done == len(status.jobs):
        return "nothing left"
    if status.eta_s is None:
        return "ETA after the first epoch"
    return f"ETA {duration(status.eta_s)}"


def progress_line(status: SweepStatus, width: int = 20) -> str:
    """``[#####...............] 5/20 jobs done (4 completed, 1 diverged, 0 failed), ...``."""
    total, done, counts = len(status.jobs), status.done, status.counts()
    filled = round(width * done / total) if total else width
    ended = ", ".join(f"{counts[s]} {s}" for s in STATUSES)
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} jobs done ({ended}), "
        f"{counts[RUNNING]} running | {eta_text(status)}"
    )


def job_line(job: JobStatus) -> str:
    """One finished job: its state, name, epochs, last accuracy and time."""
    acc = f", test_acc {job.test_acc:.4f}" if job.test_acc is not None else ""
    took = f", {duration(job.seconds)}" if job.seconds is not None else ""
    detail = f" - {job.detail}" if job.detail else ""
    return f"{job.state}: {job.name} ({_epochs(job)} epochs{acc}{took}){detail}"


def _when(job: JobStatus, now: float) -> str:
    if job.ended:
        return duration(job.seconds) if job.seconds is not None else ""
    if job.last_active is not None:
        return f"last write {duration(now - job.last_active)} ago"
    return ""


def _epochs(job: JobStatus) -> str:
    """``3/10``: epochs done of planned (``-/10`` for a job not started)."""
    done = "-" if job.state == NOT_STARTED else job.epochs_done
    return f"{done}/{job.epochs_planned or '?'}"


def _row(job: JobStatus, now: float) -> list[str]:
    acc = f"{job.test_acc:.4f}" if job.test_acc is not None else ""
    name = f"{job.name}  ({job.detail})" if job.detail else job.name
    return [job.state, _epochs(job), acc, _when(job, now), name]


def _table(rows: list[list[str]]) -> list[str]:
    """Columns padded to their widest cell; the last column (the job name) unpadded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]


def _eta(status: SweepStatus) -> str:
    """The progress line's ETA (``eta_text``), with the compute left and how it is shared."""
    left = len(status.jobs) - status.done
    if not left or status.remaining_s is None:
        return eta_text(status)
    compute = f"{duration(status.remaining_s)} of compute left over {left} job(s)"
    if status.counts()[RUNNING]:
        return f"{eta_text(status)}: {status.parallel} job(s) at once, {compute}"
    return f"nothing running now: {compute}, one at a time"


def _basis(status: SweepStatus) -> str | None:
    """Where the epoch times of the jobs that timed none come from (None: nowhere else)."""
    times = status.times
    if not status.earlier:
        return None
    (first, jobs), *others = _by_machine(status.earlier).items()
    now = f"this command's jobs at {_depths(times.now)}, else " if times.now else ""
    scale = f", scaled x{times.scale:.2f} to this command's speed" if times.now else ""
    elsewhere = ", ".join(machine or NO_MACHINE for machine, _ in others)
    elsewhere = f", else per depth {elsewhere}" if others else ""
    return (
        f"epoch times of untimed jobs: {now}{len(jobs)} earlier job(s) of the sweep "
        f"on {first or NO_MACHINE} at {_depths(times.earlier)}{scale}, else a line in depth"
        f"{elsewhere}"
    )


def _depths(depths: Iterable[int]) -> str:
    ordered = sorted(depths)
    return f"depth{'s' * (len(ordered) > 1)} {','.join(map(str, ordered))}"


def status_text(status: SweepStatus, now: float) -> str:
    """The table of jobs (by state, then name), the counts and the ETA."""
    order = {state: i for i, state in enumerate(STATES)}
    jobs = sorted(status.jobs, key=lambda j: (order[j.state], j.name))
    header = ["state", "epoch", "test_acc", "time", "job"]
    lines = [f"sweep {status.sweep_dir}"]
    lines += _table([header, *(_row(job, now) for job in jobs)])
    counts = ", ".join(f"{n} {state}" for state, n in status.counts().items())
    n = len(status.jobs)
    known = (
        f"{n} jobs of the latest command (jobs.json)"
        if status.listed
        else f"{n} job dirs found; no jobs.json, so jobs not started yet are not counted"
    )
    lines.append(f"{counts} ({known})")
    if status.counts()[INCOMPLETE]:
        lines.append(
            f"{INCOMPLETE}: no result.json and no claim of a live run: cut short, or run "
            "by a launcher that writes no claim; the same sweep command continues it"
        )
    lines.append(_eta(status))
    basis = _basis(status)
    if basis and len(status.jobs) > status.done:
        lines.append(basis)
    return "\n".join(lines)
