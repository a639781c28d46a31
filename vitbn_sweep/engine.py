"""The engine: one process per device trains several stacked groups at once.

    python -m vitbn_sweep -m hydra/launcher=engine experiment=article_full

Why: the study's small models leave a GPU mostly idle between kernel launches. Running
several stacked groups as separate processes (``hydra/launcher=stacked n_jobs=10``) only
time-slices the GPU between processes and oversubscribes the CPU cores (on one H200 a
depth-7 group took 52-75 s per epoch among 10 processes against 6.9 s alone). The engine
instead issues every group's steps from one process, one step of each group in turn,
each group on its own CUDA stream, so that kernels of different groups can overlap on
the device while the host thread prepares the next group's step.

Each group runs through ``stacked_train.group_steps``: the claims, resume, metrics,
checkpoints, divergence and ``result.json`` per member. The engine only decides whose
step comes next; a group alone (``train_group``) is an engine of one. On the CPU
the loop is the same, serial: the CPU tests check that an engine's groups end exactly as
the same groups trained one after another.

Several devices: ``assign`` splits the groups over the devices by predicted cost (the
members' epochs priced by ``epoch_times.depth_line``), largest first to the least loaded
device, and the launcher starts one engine per device with an explicit ``cuda:i``;
``threads_per_engine`` gives each engine its share of the cores it may really use.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from vitbn_sweep.epoch_times import depth_line
from vitbn_sweep.lifecycle import Outcome
from vitbn_sweep.stacked_train import group_steps
from vitbn_sweep.train import resolve_device

log = logging.getLogger(__name__)

Group = tuple[Sequence[Mapping[str, Any]], Sequence[str | Path]]  # (configs, job dirs)


def train_groups(groups: Sequence[Group]) -> list[list[Outcome]]:
    """Train every group in this process, one step of each in turn, until all have ended.

    Returns per group what ``stacked_train.group_steps`` returns: per member its result
    record or the exception that failed it. A group that cannot start (an invalid config:
    ``ConfigError``, ``ValueError``) fails all its members and the others go on. An
    interrupt (Ctrl-C, a scheduler's signal) is passed to every group still training, so
    that each leaves its members to continue from their checkpoints, then propagates.
    """
    runs = [group_steps(configs, dirs) for configs, dirs in groups]
    # A group alone has nothing to overlap with: it stays on the current stream
    # (hydra/launcher=stacked runs each group as an engine of one).
    streams = [
        _stream(configs[0]) if len(groups) > 1 else contextlib.nullcontext()
        for configs, _ in groups
    ]
    outcomes: list[list[Outcome] | None] = [None] * len(groups)
    active = list(range(len(groups)))
    try:
        while active:
            for i in list(active):
                try:
                    with streams[i]:
                        next(runs[i])
                except StopIteration as end:
                    outcomes[i] = end.value
                    active.remove(i)
                except Exception as exc:  # raised before any member trained: all failed
                    outcomes[i] = [exc] * len(groups[i][0])
                    active.remove(i)
    except (KeyboardInterrupt, SystemExit) as stop:
        for i in active:  # the group that was interrupted has ended already: throw is a no-op
            with contextlib.suppress(BaseException):
                runs[i].throw(stop)
        raise
    return outcomes  # type: ignore[return-value]


def train_group(
    configs: Sequence[Mapping[str, Any]], job_dirs: Sequence[str | Path]
) -> list[Outcome]:
    """One group alone (``train_groups`` of one): per member its result record or the
    exception that failed it."""
    return train_groups([(configs, job_dirs)])[0]


def _stream(config: Mapping[str, Any]) -> contextlib.AbstractContextManager[Any]:
    """The group's own CUDA stream on its device (after the work queued so far), or nothing
    on the CPU. ``torch.cuda.stream``'s context can be entered again after each exit, so one
    per group serves every step."""
    device = resolve_device(config["trainer"]["device"])
    if device.type != "cuda":
        return contextlib.nullcontext()
    stream = torch.cuda.Stream(device=device)
    stream.wait_stream(torch.cuda.current_stream(device))
    return torch.cuda.stream(stream)


def group_cost(configs: Sequence[Mapping[str, Any]], seconds_at: Callable[[int], float]) -> float:
    """Predicted training time of a group: its members' epochs priced by depth."""
    return sum(c["trainer"]["epochs"] * seconds_at(int(c["model"]["depth"])) for c in configs)


def assign(costs: Sequence[float], devices: int) -> list[list[int]]:
    """Split groups (their ``costs``) over ``devices``: the largest first, each to the device
    with the least predicted work so far (longest-processing-time first). Returns per device
    the indices of its groups, in the order given."""
    if devices < 1:
        raise ValueError(f"assign: devices={devices}, must be 1 or more")
    load = [0.0] * devices
    placed: list[list[int]] = [[] for _ in range(devices)]
    for i in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        d = min(range(devices), key=lambda d: (load[d], d))
        load[d] += costs[i]
        placed[d].append(i)
    return [sorted(p) for p in placed]


def plan(
    groups: Sequence[Sequence[Mapping[str, Any]]],
    devices: Sequence[str],
    known: Mapping[int, float] | None = None,
) -> list[tuple[str, list[int]]]:
    """Per device (in ``devices`` order, those given work only) the groups it trains.

    ``known``: seconds per epoch at measured depths (for ``depth_line``); without
    timings a member's epoch is taken as proportional to its depth."""
    seconds_at = depth_line(known or {1: 1.0})
    costs = [group_cost(g, seconds_at) for g in groups]
    return [
        (dev, idx) for dev, idx in zip(devices, assign(costs, len(devices)), strict=True) if idx
    ]


def visible_devices(spec: str | Sequence[str] = "auto") -> list[str]:
    """``auto``: every visible CUDA device (``cuda:0``, ``cuda:1``, ...), else ``["cpu"]``;
    or the devices named (``cuda:0,cuda:1``, a list, ``cpu``)."""
    if isinstance(spec, str) and spec != "auto":
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    if spec == "auto":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return [f"cuda:{i}" for i in range(count)] or ["cpu"]
    names = list(spec)
    for name in names:
        if name != "cpu" and not (name.startswith("cuda:") and name[5:].isdigit()):
            raise ValueError(f"hydra.launcher.devices: {name!r} is not cpu or cuda:N (e.g. cuda:0)")
    if not names:
        raise ValueError("hydra.launcher.devices: no device named; use auto, cpu or cuda:N,...")
    return names


def available_cores(environ: Mapping[str, str] = os.environ) -> int:
    """The cores this process may really use: Slurm's ``SLURM_CPUS_PER_TASK`` where set,
    else the CPU affinity mask (a container or ``taskset`` limits it), else ``os.cpu_count``."""
    slurm = environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        return int(slurm)
    with contextlib.suppress(AttributeError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_per_engine(engines: int, cores: int | None = None) -> int:
    """torch threads for each of ``engines`` processes sharing ``cores``: an equal share,
    at least one, so that the engines do not oversubscribe the cores."""
    cores = available_cores() if cores is None else cores
    return max(1, cores // max(1, engines))
