"""What a job finds in its directory when it starts: done, cut short, or nothing.

A job directory is a pure function of the job's overrides, so running the same
sweep command again addresses the same directories. Here each job decides:

    result.json, completed, same config  -> skip (no data loaded, no tracker)
    result.json, diverged or failed      -> skip, unless resume.rerun_diverged /
                                            resume.rerun_failed asks to run it again
    result.json of another config        -> refuse loudly (would mix two studies)
    checkpoint.pt, same config           -> continue after its last finished epoch
    checkpoint.pt unreadable             -> warn, keep it aside, start over
    result.json or metrics.csv damaged   -> warn naming the file; run it again (resume
                                            from its checkpoint if any, else start)
    result.json of an unknown schema     -> refuse (written by another version)
    nothing                              -> start

"Same config" compares the job's identity (``vitbn_sweep.identity``): its resolved
config without the keys that say where or how it runs.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitbn_sweep import store
from vitbn_sweep.identity import identity_differences, job_identity
from vitbn_sweep.store import CHECKPOINT_FILE

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = 1


class JobDirConflict(RuntimeError):
    """The job directory holds results of a different config."""


@dataclass
class Plan:
    action: str  # "skip" | "resume" | "start"
    previous: dict[str, Any] | None = None  # the result record found (skip) or None
    checkpoint: dict[str, Any] | None = None  # the loaded checkpoint (resume) or None


def _ended(job_dir: Path, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The checked result record of ``job_dir``, or None when the job has not ended or its
    files are damaged (then named in a warning: the job runs again). Raises
    ``JobDirConflict`` for a record of another config or of an unknown schema version."""
    try:
        previous, _ = store.ended(job_dir)
    except store.UnknownSchema as exc:
        raise JobDirConflict(f"{exc}; refusing to overwrite it") from exc
    except store.DamagedFile as exc:
        log.warning("%s; treating the job as not ended: it runs again", exc)
        return None
    if previous is not None:
        _check_same(job_dir, job_identity(config), job_identity(previous["config"]))
    return previous


def finished(job_dir: Path, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The result record of ``job_dir`` if this job has ended and is not to run again.

    Reads only ``result.json`` and ``metrics.csv`` (cheap: the sweeper calls it for every
    job before launching). Raises ``JobDirConflict`` if the record is of another config.
    """
    opts = config["resume"]
    previous = _ended(job_dir, config) if opts["enabled"] else None
    if previous is None or _reruns(previous["status"], opts):
        return None
    return previous


def _reruns(status: str, opts: Mapping[str, Any]) -> bool:
    return (status == store.FAILED and opts["rerun_failed"]) or (
        status == store.DIVERGED and opts["rerun_diverged"]
    )


def plan(job_dir: Path, config: Mapping[str, Any]) -> Plan:
    """Decide what this job does, from what its directory holds."""
    opts = config["resume"]
    if not opts["enabled"]:
        return Plan("start")
    previous = _ended(job_dir, config)
    if previous is not None and not _reruns(previous["status"], opts):
        return Plan("skip", previous=previous)
    if previous is not None:
        status = previous["status"]
        log.warning(
            "%s: running again a job that ended %s (resume.rerun_%s=true)", job_dir, status, status
        )
        if status == store.DIVERGED:  # its last checkpoint would diverge the same way again
            return Plan("start")
    ckpt_path = job_dir / CHECKPOINT_FILE
    if not ckpt_path.is_file():
        return Plan("start")
    checkpoint = load_checkpoint(ckpt_path)
    if checkpoint is None:
        return Plan("start")
    _check_same(job_dir, job_identity(config), checkpoint["identity"])
    return Plan("resume", checkpoint=checkpoint)


def _check_same(job_dir: Path, now: dict[str, Any], there: dict[str, Any]) -> None:
    diff = identity_differences(now, there)
    if diff:
        raise JobDirConflict(
            f"{job_dir} holds a job of a different config ({'; '.join(diff[:5])}). "
            "Use another sweep_name (or hydra.sweep.dir), or remove that directory."
        )


def save_checkpoint(job_dir: Path, state: Mapping[str, Any]) -> None:
    """``state`` (torch tensors inside) as ``checkpoint.pt``, atomically; only the last.

    Serialised in memory first: torch's zip writer, writing to a full disk itself, fails
    with "enforce fail at inline_container.cc ... unexpected pos", which names neither the
    file nor the cause; a plain write fails with ENOSPC, which ``store.WriteError`` names."""
    import torch

    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, buf)
    store.write_bytes(job_dir / CHECKPOINT_FILE, buf.getbuffer())


def drop_checkpoint(job_dir: Path) -> None:
    """Remove the job's checkpoint: it completed, and ``resume.keep_checkpoint`` is false."""
    (job_dir / CHECKPOINT_FILE).unlink(missing_ok=True)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path``, or None (with a warning) if it is unreadable."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"not a format-{CHECKPOINT_FORMAT} vitbn_sweep checkpoint")
    except Exception as exc:
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        log.warning(
            "%s is unreadable (%s: %s); moved it to %s and starting over",
            path,
            type(exc).__name__,
            exc,
            aside.name,
        )
        return None
    return state
