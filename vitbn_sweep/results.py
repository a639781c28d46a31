"""Where and with what a job ran: the provenance fields of its ``result.json``.

The results contract itself (files, columns, schema version, atomic writes, checked
reads) is ``vitbn_sweep.store``'s.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

CPUINFO = Path("/proc/cpuinfo")
CPU_KEYS = ("cpu", "cpu_capability", "cpu_id")  # host keys that tell CPUs apart


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def versions() -> dict[str, Any]:
    import torch
    import torchvision

    from vitbn_sweep import __version__

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "vitbn_sweep": __version__,
        "git_commit": _git_commit(),
    }


def where() -> dict[str, Any]:
    """Where this job runs: Slurm ids when under Slurm, else local."""
    env = os.environ
    if "SLURM_JOB_ID" in env:
        return {
            "scheduler": "slurm",
            "slurm_job_id": env.get("SLURM_ARRAY_JOB_ID", env["SLURM_JOB_ID"]),
            "slurm_array_task_id": env.get("SLURM_ARRAY_TASK_ID"),
            "slurm_raw_job_id": env["SLURM_JOB_ID"],
            "node": env.get("SLURMD_NODENAME", socket.gethostname()),
        }
    return {"scheduler": "local", "node": socket.gethostname(), "pid": os.getpid()}


def cpuinfo(path: Path = CPUINFO) -> dict[str, str]:
    """The first CPU's fields in ``/proc/cpuinfo`` (the others repeat them); {} without it
    (not Linux)."""
    fields: dict[str, str] = {}
    try:
        for line in path.read_text().splitlines():
            if not line.strip():
                break  # the end of the first CPU's block
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        return {}
    return fields


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what the platform says)."""
    return cpuinfo().get("model name") or platform.processor() or "unknown"


def cpu_id(path: Path = CPUINFO) -> str:
    """``AuthenticAMD family 25 model 17 stepping 1``: which chip exactly, where model names
    alike (a VM's "AMD EPYC") hide chips of different speed; empty without /proc/cpuinfo's
    x86 fields."""
    fields = cpuinfo(path)
    keys = ("cpu family", "model", "stepping")
    if not all(k in fields for k in keys):
        return ""
    ids = " ".join(f"{k.removeprefix('cpu ')} {fields[k]}" for k in keys)
    return f"{fields.get('vendor_id', '?')} {ids}"


def host(device: torch.device) -> dict[str, Any]:
    """Where the job ran: host, platform, command line, the CPU (model name, exact chip, and
    the instruction set torch's CPU kernels use: fp32 sums can differ in the last bits
    between them) and, on CUDA, the GPU's name."""
    import torch

    record = {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "argv": sys.argv,
        "cpu": cpu_model(),
        "cpu_id": cpu_id(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    if device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(device)
    return record


def hardware(result: Mapping[str, Any]) -> list[str]:
    """What a job's record says of the hardware its speed depends on: the GPU's name for a
    CUDA job, the CPU's model, kernels and chip for a CPU job; older records lack some."""
    recorded = result.get("host") or {}
    keys = ("gpu",) if str(result.get("device")).startswith("cuda") else CPU_KEYS
    return [str(recorded[k]) for k in keys if recorded.get(k)]


def machine(result: Mapping[str, Any]) -> str | None:
    """The kind of machine a job ran on, to compare job times by: ``cpu (AMD EPYC, AVX512,
    AuthenticAMD family 25 model 17 stepping 1)``, ``cuda (NVIDIA H200)``, or just the
    device where the record is older than these fields; None without a device. Not the host
    name: a cluster's nodes of one kind are alike, and every VM here is called "vm"."""
    if not result.get("device"):
        return None
    parts = hardware(result)
    return f"{result['device']} ({', '.join(parts)})" if parts else str(result["device"])
