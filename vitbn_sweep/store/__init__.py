"""The sweep directory's one owner: its layout, a job's states, and every read and write.

A sweep directory is this project's database. Its layout::

    <sweep_dir>/multirun.yaml      the latest command's composed config (Hydra's convention)
    <sweep_dir>/jobs.json          the latest command's job directory names, all of them
    <sweep_dir>/grid.json          every command's job names so far (their union)
    <sweep_dir>/commands.jsonl     one line per command when it starts and one when it ends
    <sweep_dir>/resolve.json       the user's own command, pinned while ``resolve`` runs
    <sweep_dir>/report/            the analysis' output: not a job (``NOT_JOB_DIRS``)
    <sweep_dir>/<job>/.hydra/config.yaml   the job's composed config (Hydra writes it)
    <sweep_dir>/<job>/.claim.json  who trains the job now (``vitbn_sweep.store.claims``)
    <sweep_dir>/<job>/checkpoint.pt  the state after its last finished epoch
    <sweep_dir>/<job>/metrics.csv  one row per finished epoch (``METRIC_COLUMNS``)
    <sweep_dir>/<job>/result.json  written last: its presence means the job ended

A job's states, as its directory shows them::

    planned ---> claimed ---> running ---> completed | diverged | failed
    (grid.json)  (a claim)    (epochs       (result.json, its ``status``)
                               written)
                                 |
                                 +--> incomplete (no result.json, no live claim: cut
                                      short; the same command continues it)

``planned`` and ``claimed`` read "not started": nothing of the job is written yet. A
failed or diverged job goes back to running when a rerun asks for it
(``resume.rerun_failed`` / ``resume.rerun_diverged``); a completed one never does.

Writes are atomic (a temporary file in the same directory, flushed, fsynced, renamed),
and a job writes in an order that a crash or a full disk at any point leaves readable:
the checkpoint of an epoch before its metrics row (metrics never run ahead of the
checkpoint a rerun continues from), ``result.json`` last. A write that fails raises
``WriteError``, naming the file and the cause.

Reads are checked: ``result.json`` of an unknown ``schema_version`` is refused
(``UnknownSchema``), never taken as completed; a truncated or malformed ``result.json``
or ``metrics.csv`` raises ``DamagedFile`` naming the path, and callers treat the job
as one to run again. Imports nothing heavy: the sweeper calls it on a login node.

This module holds the layout, the states and the atomic, checked reads and writes; its
submodules hold what is built on them, and nothing outside the package opens these files:

- ``claims``: who trains a job now (a claim per job, its owner's liveness, the plan check);
- ``resume``: what a job does on a rerun (skip, continue from its checkpoint, start over)
  and the checkpoint itself;
- ``record``: the sweep-level files a command writes (``multirun.yaml``, ``jobs.json``,
  ``grid.json``, ``commands.jsonl``), signals included;
- ``status``: where a sweep stands, read from its directory alone, the ETA, and the words
  for them (the watcher's lines, the table of ``analysis status``);
- ``watch``: the live progress line of a running sweep.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import yaml
from omegaconf import DictConfig, OmegaConf, open_dict

# --- the layout ---------------------------------------------------------------------------

MULTIRUN_FILE = "multirun.yaml"
JOBS_FILE = "jobs.json"
GRID_FILE = "grid.json"
COMMANDS_FILE = "commands.jsonl"
ORIGIN_FILE = "resolve.json"
WANDB_UNREACHABLE = ".wandb_unreachable"  # the wandb server did not answer this sweep's probe
NOT_JOB_DIRS = frozenset({"report"})
HYDRA_DIR = ".hydra"
HYDRA_CONFIG = Path(HYDRA_DIR) / "config.yaml"
JOB_LOG = "vitbn_sweep.log"  # hydra.job.name's log file
CLAIM_FILE = ".claim.json"
CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.csv"
RESULT_FILE = "result.json"
HYDRA_LEFTOVERS = frozenset({HYDRA_DIR, JOB_LOG})  # what a job dir holds before a job writes
STARTED_MARKERS = (RESULT_FILE, METRICS_FILE, CHECKPOINT_FILE, HYDRA_DIR)  # a job began here
JOB_MARKERS = (*STARTED_MARKERS, CLAIM_FILE)  # a job dir: a job began, or is claimed


def outputs_dir() -> Path:
    """Where sweeps go: ``$VITBN_OUTPUT_DIR``, else ``./outputs`` (as in conf/config.yaml)."""
    return Path(os.environ.get("VITBN_OUTPUT_DIR") or "outputs")


# --- the records ----------------------------------------------------------------------------

SCHEMA_VERSION = 1  # of result.json: bump on any change an older reader would misread
SUPPORTED_SCHEMA_VERSIONS = (1,)
METRIC_COLUMNS = (
    "epoch",
    "train_loss",
    "train_acc",
    "test_acc",
    "test_acc_clean",
    "epoch_seconds",
    "samples_per_s",
)

# --- the states -----------------------------------------------------------------------------

COMPLETED, DIVERGED, FAILED = "completed", "diverged", "failed"
RUNNING, INCOMPLETE, NOT_STARTED = "running", "incomplete", "not started"
STATUSES = (COMPLETED, DIVERGED, FAILED)  # what result.json can say: the job ended
STATES = (*STATUSES, RUNNING, INCOMPLETE, NOT_STARTED)


class WriteError(OSError):
    """A file of the sweep directory could not be written (disk full, permissions ...)."""

    def __init__(self, path: Path, cause: BaseException) -> None:
        why = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
        super().__init__(getattr(cause, "errno", None), f"cannot write {path}: {why}")
        self.path, self.cause = path, cause

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self) -> tuple[Any, ...]:  # a failed job's error travels back pickled
        return type(self), (self.path, self.cause)


class DamagedFile(ValueError):
    """A file of the sweep directory is truncated or malformed: it is no data."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path, self.why = path, why

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.path, self.why)


class UnknownSchema(DamagedFile):
    """A ``result.json`` of a ``schema_version`` this code does not read."""


# --- writes ---------------------------------------------------------------------------------

_UMASK = os.umask(0)
os.umask(_UMASK)


def _write_file(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """The one place a file of the sweep directory is written: ``write(f)`` into a temporary
    file next to ``path``, flushed and fsynced, then renamed onto ``path``. On any failure
    the temporary file is removed and ``path`` is as it was."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise WriteError(path, exc) from exc
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file open()'s usual mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(path, exc) from exc
        raise


def write_bytes(path: Path, data: bytes) -> None:
    _write_file(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (``WriteError`` naming ``path`` on failure)."""
    write_bytes(Path(path), text.encode())


def write_json(path: Path, record: Any) -> None:
    atomic_write_text(path, json.dumps(record, indent=2, default=str) + "\n")


def write_yaml(path: Path, config: Any) -> None:
    """``config`` (an OmegaConf node, a dict or a list) as YAML, atomically: never the
    0-byte file that ``OmegaConf.save`` leaves on a full disk."""
    node = config if OmegaConf.is_config(config) else OmegaConf.create(config)
    atomic_write_text(path, OmegaConf.to_yaml(node))


def write_metrics(job_dir: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(job_dir / METRICS_FILE, buf.getvalue())


def write_result(job_dir: Path, result: Mapping[str, Any]) -> None:
    write_json(job_dir / RESULT_FILE, result)


def append_line(path: Path, record: Mapping[str, Any]) -> None:
    """One JSON line appended (a log: a line cut by a crash is skipped by ``read_lines``)."""
    try:
        with open(path, "a") as f:
            f.write(json.dumps(record, default=str) + "\n")
    except OSError as exc:
        raise WriteError(path, exc) from exc


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The records of a log that ``append_line`` writes, oldest first; a line cut by a crash,
    or not a record, is skipped (an append-only log: the lines before it are whole)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            records.append(entry)
    return records


# --- reads ----------------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    """The JSON document at ``path``; None when absent, unreadable or malformed."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def read_yaml(path: Path) -> Any:
    """The YAML document at ``path``; None when absent, empty, unreadable or malformed."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return None


def job_config(job_dir: Path) -> dict[str, Any] | None:
    """The job's composed config (``.hydra/config.yaml``); None when absent or damaged."""
    config = read_yaml(Path(job_dir) / HYDRA_CONFIG)
    return config if isinstance(config, dict) else None


def check_result(result: Any, where: str | Path) -> dict[str, Any]:
    """``result`` if it is a result record this code reads; else ``DamagedFile`` (or
    ``UnknownSchema``) naming ``where``."""
    if not isinstance(result, dict):
        raise DamagedFile(Path(where), "not a result record (expected a JSON object)")
    version = result.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        readable = ", ".join(map(str, SUPPORTED_SCHEMA_VERSIONS))
        raise UnknownSchema(
            Path(where),
            f"incompatible result schema_version {version!r}; this vitbn_sweep reads "
            f"version {readable} (read it with the version that wrote it)",
        )
    if result.get("status") not in STATUSES or not isinstance(result.get("config"), dict):
        raise DamagedFile(
            Path(where), f"malformed result (status {result.get('status')!r}, config missing?)"
        )
    return result


def read_result(job_dir: Path) -> dict[str, Any] | None:
    """The job's checked result record; None when the job has not ended (no result.json)."""
    path = Path(job_dir) / RESULT_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DamagedFile(path, f"unreadable ({exc.strerror or exc})") from exc
    try:
        result = json.loads(text)
    except ValueError as exc:
        raise DamagedFile(path, f"not JSON ({exc}): truncated or overwritten") from exc
    return check_result(result, path)


def _number(text: str, path: Path, line: int, column: str) -> float | int | None:
    if text == "":
        return None  # a value not measured (an older or a hand-made file)
    try:
        value = float(text)
    except ValueError:
        raise DamagedFile(path, f"line {line}: {column} is {text!r}, not a number") from None
    return int(value) if column == "epoch" and value.is_integer() else value


def read_metrics(job_dir: Path) -> list[dict[str, Any]]:
    """The job's metrics rows (numbers; None where a value is empty), ``[]`` without the
    file. A file cut short, with a row of missing or extra fields, a non-number, another
    header or epochs out of order raises ``DamagedFile``: none of it is data."""
    path = Path(job_dir) / METRICS_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise DamagedFile(path, f"unreadable ({exc.strerror or exc})") from exc
    if text and not text.endswith("\n"):
        raise DamagedFile(path, "cut short (its last line has no end)")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise DamagedFile(path, "empty (not even a header)")
    if tuple(header) != METRIC_COLUMNS:
        raise DamagedFile(path, f"header {','.join(header)!r} is not {','.join(METRIC_COLUMNS)}")
    rows = []
    for line, cells in enumerate(reader, start=2):
        if len(cells) != len(METRIC_COLUMNS):
            raise DamagedFile(path, f"line {line} has {len(cells)} of {len(METRIC_COLUMNS)} fields")
        row = {c: _number(v, path, line, c) for c, v in zip(METRIC_COLUMNS, cells, strict=True)}
        if row["epoch"] != len(rows) + 1:
            raise DamagedFile(path, f"line {line}: epoch {row['epoch']}, expected {len(rows) + 1}")
        rows.append(row)
    return rows


def ended(job_dir: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(result, metrics rows) of a job that ended and whose files are whole; (None, rows)
    for a job that has not ended. ``DamagedFile`` when either file is damaged, or the
    metrics hold fewer epochs than the result says ran; ``UnknownSchema`` for a result of
    another version."""
    result = read_result(job_dir)
    rows = read_metrics(job_dir)
    runs = result.get("epochs_run") if result is not None else None
    if isinstance(runs, int) and len(rows) < runs:
        raise DamagedFile(Path(job_dir) / METRICS_FILE, f"{len(rows)} rows, {runs} epochs ran")
    return result, rows


def started(job_dir: Path) -> bool:
    """True if ``job_dir`` exists and holds more than a claim.

    A directory holding only a claim is planned and claimed, waiting its turn: not started.
    """
    try:
        names = {p.name for p in Path(job_dir).iterdir()}
    except OSError:
        return False
    return names != {CLAIM_FILE}


def result_written(job_dir: Path) -> bool:
    """True if the job wrote its ``result.json`` (whole or not: ``read_result`` checks it)."""
    return (job_dir / RESULT_FILE).is_file()


def untouched(job_dir: Path) -> bool:
    """True if ``job_dir`` holds only Hydra's files and an empty log: no job wrote there."""
    try:
        names = {p.name for p in job_dir.iterdir()}
        log = job_dir / JOB_LOG
        return names <= HYDRA_LEFTOVERS and (not log.exists() or log.stat().st_size == 0)
    except OSError:
        return False


def sweep_dirs(root: Path) -> list[Path]:
    """Every sweep dir at or under ``root`` (a dir holding ``multirun.yaml``), not inside
    a ``NOT_JOB_DIRS`` folder of it (a report's copy); folders above ``root`` do not count."""
    return [
        p.parent
        for p in Path(root).rglob(MULTIRUN_FILE)
        if not NOT_JOB_DIRS & set(p.relative_to(root).parts)
    ]


def newest_sweep(root: Path) -> Path | None:
    """The sweep dir under ``root`` whose latest command started last (every command rewrites
    its ``multirun.yaml``), or None when there is none."""
    return max(sweep_dirs(root), key=lambda p: (p / MULTIRUN_FILE).stat().st_mtime, default=None)


def job_dirs(root: Path, *, markers: Sequence[str] = JOB_MARKERS) -> list[Path]:
    """Every job directory at or under ``root`` (one holding any of ``markers``), sorted;
    hidden directories and ``NOT_JOB_DIRS`` are skipped, and nothing below a job dir."""
    found, todo = [], [Path(root)]
    while todo:
        folder = todo.pop()
        if any((folder / marker).exists() for marker in markers):
            found.append(folder)
            continue
        try:
            children = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
        except OSError:
            continue
        todo += [child for child in children if child.name not in NOT_JOB_DIRS]
    return sorted(found)


# --- notes to the sweep's later jobs ------------------------------------------------------------


def wandb_unreachable(sweep_dir: Path, max_age_s: float) -> str | None:
    """Why the wandb server did not answer a job of this sweep, if one said so (``note_wandb_
    unreachable``) within the last ``max_age_s`` seconds: the other jobs then skip the probe."""
    path = sweep_dir / WANDB_UNREACHABLE
    try:
        if time.time() - path.stat().st_mtime < max_age_s:
            return path.read_text().strip() or None
    except OSError:
        pass
    return None


def note_wandb_unreachable(sweep_dir: Path, why: str) -> None:
    """Tell the sweep's later jobs that the wandb server did not answer, and ``why``."""
    atomic_write_text(sweep_dir / WANDB_UNREACHABLE, why + "\n")


# --- the config a job records -----------------------------------------------------------------


def plain_config(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """A job's config as result.json records it: resolved, plain, without ``hydra``."""
    if isinstance(cfg, DictConfig):
        cfg = cfg.copy()
        with open_dict(cfg):
            cfg.pop("hydra", None)
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return {k: v for k, v in cfg.items() if k != "hydra"}


def finite(value: Any) -> float | None:
    """``value`` as a finite float, else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
