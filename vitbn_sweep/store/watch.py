"""The live status of a running sweep: a thread that reads the sweep directory
(``vitbn_sweep.store.status``) and prints, in whole lines, each job that ends and the
progress with its ETA. The sweeper starts one for every sweep it launches.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from vitbn_sweep.store.status import (
    JobStatus,
    SweepStatus,
    earlier_jobs,
    job_line,
    progress_line,
    read_sweep,
    sweep_config,
)


class SweepWatcher:
    """Reports a running sweep from a background thread, in whole lines (log-file safe).

    ``SweepWatcher(sweep_dir, job_dirs, stream=sys.stderr, interval_s=10.0, parallel=None)``
    watches ``job_dirs`` (every job of the command, the ones to skip included: they
    count as done). ``start()`` prints one line (jobs, already ended) and starts a daemon
    thread that checks the job directories every ``interval_s`` seconds and prints:

    - one line per job that ends while watched (state, name, epochs, accuracy, time);
    - a progress line (bar, done/total, completed/diverged/failed so far, running, ETA)
      when a job ends; otherwise, when an epoch ended somewhere, on a terminal at once
      and in a log file at most once per ``log_every_s`` (default 5 min). Whole lines
      only, never a carriage return: the jobs of a local launcher print to the same
      terminal.

    ``stop()`` stops the thread, checks once more, prints the final progress line
    (unless the last line already said it) and returns the final ``SweepStatus``.
    ``parallel``: jobs the launcher runs at once (default: the jobs seen running).
    Also a context manager. A failure to read the directory is reported once and never
    stops the sweep.
    """

    def __init__(
        self,
        sweep_dir: str | Path,
        job_dirs: Iterable[str | Path],
        *,
        stream: TextIO | None = None,
        interval_s: float = 10.0,
        log_every_s: float = 300.0,
        parallel: int | None = None,
        tty: bool | None = None,
    ) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.names = [_relative(self.sweep_dir, Path(p)) for p in job_dirs]
        self.stream = stream if stream is not None else sys.stderr
        self.tty = _isatty(self.stream) if tty is None else tty
        self.interval_s, self.parallel = interval_s, parallel
        self.every_s = 0.0 if self.tty else log_every_s
        self.prefix = f"sweep {self.sweep_dir.name}: "
        self._stop, self._lock = threading.Event(), threading.Lock()
        self._thread: threading.Thread | None = None
        self._ended: set[str] = set()
        self._last_signature: tuple[int, ...] = ()
        self._last_line = ""
        self._last_at = -math.inf
        self._since = time.time()
        self._warned = False
        self._earlier: tuple[JobStatus, ...] = ()

    def start(self) -> SweepWatcher:
        self._since = time.time()
        try:  # the sweep's earlier jobs do not change while this command runs: read once
            self._earlier = earlier_jobs(self.sweep_dir, self.names, sweep_config(self.sweep_dir))
        except OSError:
            self._earlier = ()
        status = self._read()
        self._ended = {job.name for job in status.jobs if job.ended}
        self._say(f"{len(status.jobs)} jobs, {len(self._ended)} already ended")
        self._thread = threading.Thread(target=self._run, name="sweep-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> SweepStatus:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(self.interval_s, 1.0) + 5.0)
        with self._lock:
            status = self._report()
            if progress_line(status) != self._last_line:
                self._progress(status)
        return status

    def __enter__(self) -> SweepWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def poll(self) -> SweepStatus:
        """Check the job directories once and print what changed (the thread's step)."""
        with self._lock:
            status = self._report()
            due = time.monotonic() - self._last_at >= self.every_s
            if _signature(status) != self._last_signature and due:
                self._progress(status)
            return status

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.poll()
            except Exception as exc:  # a watcher must never cost the sweep
                if not self._warned:
                    self._warned = True
                    self._say(f"status not readable ({type(exc).__name__}: {exc}); still running")

    def _read(self) -> SweepStatus:
        return read_sweep(
            self.sweep_dir,
            self.names,
            parallel=self.parallel,
            live_since=self._since,
            earlier=self._earlier,
        )

    def _report(self) -> SweepStatus:
        """Read, print one line per newly ended job, and the progress line if any ended."""
        status = self._read()
        new = [job for job in status.jobs if job.ended and job.name not in self._ended]
        for job in new:
            self._ended.add(job.name)
            self._say(job_line(job))
        if new:
            self._progress(status)
        return status

    def _progress(self, status: SweepStatus) -> None:
        self._last_signature, self._last_at = _signature(status), time.monotonic()
        self._last_line = progress_line(status)
        self._say(self._last_line)

    def _say(self, text: str) -> None:
        self.stream.write(self.prefix + text + "\n")
        self.stream.flush()


def _signature(status: SweepStatus) -> tuple[int, ...]:
    """What a new progress line would be news about: the counts and the epochs done."""
    return (*status.counts().values(), sum(job.epochs_done for job in status.jobs))


def _relative(sweep_dir: Path, job_dir: Path) -> str:
    try:
        return job_dir.relative_to(sweep_dir).as_posix()
    except ValueError:
        return job_dir.as_posix()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
