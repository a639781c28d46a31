"""What a job finds in its directory when it starts: done, cut short, or nothing.

A job directory is a pure function of the job's overrides, so running the same
sweep command again addresses the same directories. Here each job decides:

    result.json, completed, same config  -> skip (no data loaded, no tracker)
    result.json, diverged or failed      -> skip, unless resume.rerun_diverged /
                                            resume.rerun_failed asks to run it again
    result.json of another config        -> refuse loudly (would mix two studies)
    checkpoint.pt, same config           -> continue after its last finished epoch
    checkpoint.pt unreadable             -> warn, keep it aside, start over
    nothing                              -> start

"Same config" compares the job's identity (``vitbn_sweep.identity``): its resolved
config without the keys that say where or how it runs.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitbn_sweep.identity import identity_differences, job_identity
from vitbn_sweep.results import RESULT_FILE

log = logging.getLogger(__name__)
CHECKPOINT_FILE = "checkpoint.pt"
CHECKPOINT_FORMAT = 1


class JobDirConflict(RuntimeError):
    """The job directory holds results of a different config."""


@dataclass
class Plan:
    action: str  # "skip" | "resume" | "start"
    previous: dict[str, Any] | None = None  # the result record found (skip) or None
    checkpoint: dict[str, Any] | None = None  # the loaded checkpoint (resume) or None


def finished(job_dir: Path, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The result record of ``job_dir`` if this job has ended and is not to run again.

    Reads only ``result.json`` (cheap: the sweeper calls it for every job before
    launching). Raises ``JobDirConflict`` if the record is of another config.
    """
    opts = config["resume"]
    result_path = job_dir / RESULT_FILE
    if not opts["enabled"] or not result_path.is_file():
        return None
    previous = json.loads(result_path.read_text())
    _check_same(job_dir, job_identity(config), job_identity(previous.get("config", {})))
    status = previous.get("status")
    if (status == "failed" and opts["rerun_failed"]) or (
        status == "diverged" and opts["rerun_diverged"]
    ):
        return None
    return previous


def plan(job_dir: Path, config: Mapping[str, Any]) -> Plan:
    """Decide what this job does, from what its directory holds."""
    opts = config["resume"]
    previous = finished(job_dir, config)
    if previous is not None:
        return Plan("skip", previous=previous)
    if opts["enabled"] and (job_dir / RESULT_FILE).is_file():
        status = json.loads((job_dir / RESULT_FILE).read_text()).get("status")
        log.warning(
            "%s: running again a job that ended %s (resume.rerun_%s=true)", job_dir, status, status
        )
        if status == "diverged":  # its last checkpoint would diverge the same way again
            return Plan("start")
    ckpt_path = job_dir / CHECKPOINT_FILE
    if not opts["enabled"] or not ckpt_path.is_file():
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
    """Write ``checkpoint.pt`` atomically (temporary file, then rename), keeping only the last."""
    import torch

    fd, tmp = tempfile.mkstemp(dir=job_dir, prefix=f".{CHECKPOINT_FILE}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)
        os.replace(tmp, job_dir / CHECKPOINT_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
