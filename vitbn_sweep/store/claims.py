"""Claims: a job directory is trained by one live run at a time.

A sweep claims each job it launches by writing ``<job_dir>/.claim.json``: who
owns the job (a local process, or a Slurm job that is pending or running) and a
token shared by everything one sweep command starts (``VITBN_CLAIM_TOKEN``,
inherited by local workers and by Slurm jobs). A job that starts checks the
claim: its own token, or an owner that is gone, lets it train (it then claims the
directory for itself); a live foreign owner makes it stop without touching
anything. A rerun of a sweep therefore launches neither the jobs that another
live command still runs nor those still pending in its Slurm array.

The sweep's claim also holds the job's identity as planned (``vitbn_sweep.identity``).
Every launcher composes a job again where it starts, from ``conf/`` as it is then,
so a config edited after the plan (while earlier jobs train, or while a Slurm array
waits in the queue) would reach the later jobs under the same directory names. A
job whose identity differs from its sweep's plan is refused before it writes
anything (``check_planned``), naming the keys that changed.

Liveness: a local owner on this host is alive while its pid runs with the same
start time; a Slurm owner while ``squeue`` lists it. A local owner on another
host cannot be checked from here and counts as alive (the message says how to
take it over). Imports nothing heavy: the sweeper runs it on a login node.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vitbn_sweep import store
from vitbn_sweep.identity import identity_differences
from vitbn_sweep.results import now
from vitbn_sweep.store import CLAIM_FILE

log = logging.getLogger(__name__)
TOKEN_ENV = "VITBN_CLAIM_TOKEN"
SLURM_LIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED",
              "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT"}  # fmt: skip
SQUEUE_TIMEOUT_S = 20


def new_sweep_token() -> str:
    """A new token for a sweep command, exported to everything it starts (workers, Slurm jobs)."""
    token = uuid.uuid4().hex
    os.environ[TOKEN_ENV] = token
    return token


def job_token() -> str:
    """The token of this job: its sweep's (inherited), else its own (a single run)."""
    return os.environ.get(TOKEN_ENV) or uuid.uuid4().hex


def _pid_start(pid: int) -> str | None:
    """The start time of ``pid`` (clock ticks since boot), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def this_owner(token: str, slurm_job_id: str | None = None) -> dict[str, Any]:
    """The owner record of this process (or of the Slurm job ``slurm_job_id``)."""
    env = os.environ
    if slurm_job_id is None and "SLURM_JOB_ID" in env:
        array, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
        slurm_job_id = f"{array}_{task}" if array and task else env["SLURM_JOB_ID"]
    if slurm_job_id is not None:
        return {"kind": "slurm", "slurm_job_id": str(slurm_job_id), "token": token}
    pid = os.getpid()
    return {
        "kind": "local",
        "host": socket.gethostname(),
        "pid": pid,
        "pid_start": _pid_start(pid),
        "token": token,
    }


def _is_this_process(owner: Mapping[str, Any]) -> bool:
    """A claim this very process left (a run cut by Ctrl-C and started again in it)."""
    me = this_owner("")
    return owner.get("kind") == "local" and all(
        owner.get(k) == me[k] for k in ("host", "pid", "pid_start")
    )


def describe(owner: Mapping[str, Any]) -> str:
    if owner.get("kind") == "slurm":
        return f"Slurm job {owner.get('slurm_job_id')}"
    return f"process {owner.get('pid')} on {owner.get('host')}"


def read(job_dir: Path) -> dict[str, Any] | None:
    """The claim of ``job_dir``, or None (no claim, or a damaged one: it holds nothing)."""
    claim = store.read_json(job_dir / CLAIM_FILE)
    return claim if isinstance(claim, dict) and isinstance(claim.get("owner"), dict) else None


class PlanDrift(ValueError):
    """A job's config changed between its sweep's plan and its start."""


def check_planned(job_dir: Path, token: str, identity: Mapping[str, Any]) -> None:
    """Raise ``PlanDrift`` if this sweep (``token``) planned ``job_dir`` with another identity.

    A claim of another sweep, or one without an identity (a single run), checks nothing.
    """
    claim = read(job_dir)
    if claim is None or claim["owner"].get("token") != token or "identity" not in claim:
        return
    diff = identity_differences(identity, claim["identity"], there_word="planned")
    if diff:
        release(job_dir, this_owner(token))  # a Slurm job's claim: this job ends here
        more = f" (and {len(diff) - 5} more)" if len(diff) > 5 else ""
        raise PlanDrift(
            f"{job_dir.name}: its config changed after the sweep planned it "
            f"({'; '.join(diff[:5])}{more}): conf/ was edited while the sweep ran (or a "
            "value it reads from the environment differs here). Nothing of this job was "
            "written. Restore conf/ to finish the sweep as planned, or run the sweep "
            "command again to plan it anew."
        )


class Liveness:
    """Is a claim's owner alive? Caches one ``squeue`` call per Slurm array."""

    def __init__(self) -> None:
        self._slurm: dict[str, set[str] | None] = {}

    def alive(self, owner: Mapping[str, Any]) -> tuple[bool, str]:
        """(alive, why) for ``owner``."""
        if owner.get("kind") == "slurm":
            job = str(owner.get("slurm_job_id"))
            live = self._slurm_live(job.split("_", 1)[0])
            if live is None:
                return True, f"{describe(owner)} (squeue failed: cannot tell whether it runs)"
            return job in live, describe(owner)
        if owner.get("host") != socket.gethostname():
            return True, f"{describe(owner)} (another host: cannot tell whether it runs)"
        pid = owner.get("pid")
        start = _pid_start(pid) if isinstance(pid, int) else None
        return start is not None and start == owner.get("pid_start"), describe(owner)

    def _slurm_live(self, array_id: str) -> set[str] | None:
        """Ids (``123`` and ``123_4``) of the live jobs of array/job ``array_id``."""
        if array_id not in self._slurm:
            self._slurm[array_id] = _squeue(array_id)
        return self._slurm[array_id]


def _squeue(job_id: str) -> set[str] | None:
    try:
        out = subprocess.run(
            ["squeue", "-h", "-r", "-j", job_id, "-o", "%i %T"],
            capture_output=True,
            text=True,
            timeout=SQUEUE_TIMEOUT_S,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:  # "Invalid job id specified": the job left the queue long ago
        return set() if "Invalid job id" in out.stderr else None
    live = set()
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] in SLURM_LIVE:
            live.add(parts[0])
    return live


def foreign_live_owner(job_dir: Path, token: str, liveness: Liveness | None = None) -> str | None:
    """Who else holds ``job_dir`` right now (a description), or None if it is free to train."""
    claim = read(job_dir)
    if claim is None or claim["owner"].get("token") == token or _is_this_process(claim["owner"]):
        return None
    alive, why = (liveness or Liveness()).alive(claim["owner"])
    if alive:
        return why
    log.warning("%s: taking over the claim of %s, which is gone", job_dir, why)
    return None


def claim(
    job_dir: Path, owner: Mapping[str, Any], identity: Mapping[str, Any] | None = None
) -> None:
    """Write ``owner``'s claim on ``job_dir`` (atomically), with a sweep's planned ``identity``."""
    record: dict[str, Any] = {"owner": dict(owner), "claimed_at": now()}
    if identity is not None:
        record["identity"] = dict(identity)
    store.write_json(job_dir / CLAIM_FILE, record)


def hand_over(job_dir: Path, owner: Mapping[str, Any]) -> None:
    """Give the claim on ``job_dir`` to ``owner`` (a submitted Slurm job), keeping the plan."""
    current = read(job_dir)
    claim(job_dir, owner, current.get("identity") if current is not None else None)


def release(job_dir: Path, owner: Mapping[str, Any]) -> None:
    """Remove the claim on ``job_dir`` if ``owner`` holds it."""
    current = read(job_dir)
    if current is not None and current["owner"] == dict(owner):
        (job_dir / CLAIM_FILE).unlink(missing_ok=True)
