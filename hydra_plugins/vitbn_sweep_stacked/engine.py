"""``hydra/launcher=engine``: a sweep's stacked groups, all at once, one engine per device.

    python -m vitbn_sweep -m hydra/launcher=engine experiment=article_full
    python -m vitbn_sweep -m hydra/launcher=engine hydra.launcher.devices=cuda:0,cuda:1 ...

The groups are those of ``hydra/launcher=stacked`` (``launcher.group_tasks``). Instead of
one process per group, the groups are split over the devices (``vitbn_sweep.engine.plan``:
balanced by predicted cost) and each device gets one ``EngineTask``: one process that
trains all of its groups together, one step of each in turn, each group on its own CUDA
stream (``vitbn_sweep.engine.train_groups``). Every member whose ``trainer.device`` is
``auto`` or ``cuda`` trains on its engine's device (``cuda:i``; a how-key: the job's
identity and directory are unchanged; an explicit ``cpu`` or ``cuda:N`` is kept) and,
where ``trainer.threads`` is unset, the engine's share of the cores.

With one engine it runs in this process; with several, one worker process each (joblib's
loky backend). An ``EngineTask`` is picklable, as a ``GroupTask`` is.

Kept free of torch imports at module level: Hydra imports every module under
``hydra_plugins`` at start-up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, configure_log, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from hydra_plugins.vitbn_sweep_stacked.launcher import (
    GroupTask,
    _member_logs,
    _returns,
    group_tasks,
    in_job_order,
    log_groups,
)

log = logging.getLogger(__name__)


class EngineTask:
    """The groups one engine trains on one device (``auto``: the first visible GPU, else the
    CPU, decided where the task runs); returns a list of JobReturns per group."""

    def __init__(self, *, groups: list[GroupTask], device: str, threads: int | None) -> None:
        self.groups, self.device, self.threads = groups, device, threads

    def __call__(self) -> list[list[JobReturn]]:
        from vitbn_sweep.engine import train_groups, visible_devices

        self.groups[0].enter()
        device = visible_devices()[0] if self.device == "auto" else self.device  # where it runs
        prepared = [[group._prepare(job) for job in group.jobs] for group in self.groups]
        members = [m for group in prepared for m in group]
        for m in members:
            trainer = m.config["trainer"]
            if trainer["device"] in ("auto", "cuda"):  # an explicit cpu or cuda:N stays
                trainer["device"] = device
            if trainer["threads"] is None and self.threads is not None:
                trainer["threads"] = self.threads
        with _member_logs(members, self.groups[0].config):
            outcomes = train_groups(
                [([m.config for m in group], [m.job_dir for m in group]) for group in prepared]
            )
        return [_returns(group, outs) for group, outs in zip(prepared, outcomes, strict=True)]

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit's requeue hook (timeout, preemption): run the same engine again; every
        member continues from its own checkpoint."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def engine_tasks(
    hydra_context: HydraContext,
    config: DictConfig,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
    *,
    max_members: int,
    devices: Sequence[str],
    threads: Any,
) -> tuple[list[list[int]], list[list[int]], list[EngineTask]]:
    """The jobs' groups, per engine the groups it trains, and a task per engine (one per
    device that gets work). ``threads``: per engine, or a function of the engine count."""
    from vitbn_sweep.engine import plan

    groups, tasks, configs = group_tasks(
        hydra_context, config, job_overrides, initial_job_idx, max_members=max_members
    )
    engines = plan([[configs[i] for i in group] for group in groups], devices)
    per_engine = threads(len(engines)) if callable(threads) else threads
    return (
        groups,
        [idx for _, idx in engines],
        [
            EngineTask(groups=[tasks[g] for g in idx], device=device, threads=per_engine)
            for device, idx in engines
        ],
    )


class EngineLauncher(Launcher):
    def __init__(
        self, *, max_members: int = 8, devices: str | Sequence[str] = "auto", threads: Any = "auto"
    ) -> None:
        if threads not in ("auto", None) and not (isinstance(threads, int) and threads > 0):
            raise ValueError(
                f"hydra.launcher.threads={threads!r}: use auto (the cores shared evenly by the "
                "engines), null (trainer.threads decides) or a positive number"
            )
        self.max_members, self.devices, self.threads = max_members, devices, threads
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context = config, hydra_context

    def engine_tasks(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> tuple[list[list[int]], list[list[int]], list[EngineTask]]:
        from vitbn_sweep.engine import threads_per_engine, visible_devices

        assert self.config is not None and self.hydra_context is not None
        devices = visible_devices(self.devices)
        return engine_tasks(
            self.hydra_context, self.config, job_overrides, initial_job_idx,
            max_members=self.max_members, devices=devices,
            threads=(lambda n: threads_per_engine(n)) if self.threads == "auto" else self.threads,
        )  # fmt: skip

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        setup_globals()
        assert self.config is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        groups, per_engine, tasks = self.engine_tasks(job_overrides, initial_job_idx)
        log_groups(groups, job_overrides, initial_job_idx, max_members=self.max_members)
        for task, idx in zip(tasks, per_engine, strict=True):
            log.info("engine on %s: %d groups (%s), %s threads", task.device, len(idx),
                     ", ".join(map(str, idx)), task.threads or "torch's default")  # fmt: skip
        if len(tasks) == 1:
            returns = [tasks[0]()]
        else:
            from joblib import Parallel, delayed

            returns = Parallel(n_jobs=len(tasks), backend="loky")(delayed(t)() for t in tasks)
        by_group: dict[int, list[JobReturn]] = {}
        for idx, rets in zip(per_engine, returns, strict=True):
            by_group.update(zip(idx, rets, strict=True))
        return in_job_order(groups, [by_group[g] for g in range(len(groups))])
