"""``hydra/launcher=stacked_slurm``: a sweep's stacked groups on Slurm, one array task per group;
``hydra/launcher=engine_slurm``: one array task per GPU, each an engine carrying several groups.

    python -m vitbn_sweep -m hydra/launcher=stacked_slurm experiment=article_full
    python -m vitbn_sweep -m hydra/launcher=engine_slurm hydra.launcher.engines=2 experiment=...

The groups are those of ``hydra/launcher=stacked`` (``launcher.group_tasks``); the Slurm
resources, requeue and claims are those of ``hydra/launcher=slurm``: this is
``ClaimingSlurmLauncher`` submitting an array of ``GroupTask``s instead of one task per
job (each carries submitit's ``checkpoint`` hook, so a group cut by a timeout or a
preemption is requeued and every member continues from its own checkpoint). Once the
array is submitted, every member's claim names its group's Slurm job (``123_4``), so a
rerun meanwhile submits none of them again.

``engine_slurm`` splits the groups over ``engines`` array tasks by predicted cost
(``vitbn_sweep.engine.plan``), each task on the first GPU Slurm gives it (the CPU on a
node without: ``gpus_per_node=null``) and its ``cpus_per_task`` as torch threads; each
carries submitit's ``checkpoint`` hook too.

``max_members`` (and ``engines``) join the launcher config as the first of its defaults
(the nodes ``MEMBERS_NODE``, ``ENGINES_NODE``): a key that Hydra's structured Slurm schema
lacks can only precede it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn

from hydra_plugins.vitbn_sweep_stacked.engine import engine_tasks
from hydra_plugins.vitbn_sweep_stacked.launcher import group_tasks, in_job_order, log_groups
from hydra_plugins.vitbn_sweep_sweeper.slurm import ClaimingSlurmLauncher, Submitted

MAX_MEMBERS = 8
MEMBERS_NODE = ("vitbn_sweep_stacked", "members")  # (group, name) in Hydra's ConfigStore
ConfigStore.instance().store(
    group=MEMBERS_NODE[0], name=MEMBERS_NODE[1], node={"max_members": MAX_MEMBERS},
    provider="vitbn_sweep",
)  # fmt: skip
ENGINES_NODE = ("vitbn_sweep_stacked", "engines")
ConfigStore.instance().store(
    group=ENGINES_NODE[0], name=ENGINES_NODE[1],
    node={"max_members": MAX_MEMBERS, "engines": 1}, provider="vitbn_sweep",
)  # fmt: skip


class StackedSlurmLauncher(ClaimingSlurmLauncher):
    def __init__(self, *, max_members: int = MAX_MEMBERS, **params: Any) -> None:
        super().__init__(**params)
        self.max_members = max_members

    def submit(
        self, executor: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Submitted:
        """One array task per stacked group (a ``GroupTask``), in one batch."""
        assert self.config is not None and self.hydra_context is not None
        groups, tasks, _ = group_tasks(
            self.hydra_context,
            self.config,
            job_overrides,
            initial_job_idx,
            max_members=self.max_members,
        )
        log_groups(groups, job_overrides, initial_job_idx, max_members=self.max_members)
        with executor.batch():
            jobs = [executor.submit(task) for task in tasks]
        return list(zip(jobs, groups, strict=True))

    def gather(self, submitted: Submitted) -> list[JobReturn]:
        """Each group's list of returns, back in the order of the sweep's jobs."""
        groups = [members for _, members in submitted]
        return in_job_order(groups, [job.results()[0] for job, _ in submitted])


class EngineSlurmLauncher(ClaimingSlurmLauncher):
    def __init__(self, *, max_members: int = MAX_MEMBERS, engines: int = 1, **params: Any) -> None:
        if engines < 1:
            raise ValueError(f"hydra.launcher.engines={engines}: must be 1 or more")
        super().__init__(**params)
        self.max_members, self.engines = max_members, engines

    def submit(
        self, executor: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Submitted:
        """One array task per engine (an ``EngineTask`` on its task's GPU), in one batch."""
        assert self.config is not None and self.hydra_context is not None
        groups, per_engine, tasks = engine_tasks(
            self.hydra_context, self.config, job_overrides, initial_job_idx,
            max_members=self.max_members, devices=["auto"] * self.engines, threads=None,
        )  # fmt: skip
        log_groups(groups, job_overrides, initial_job_idx, max_members=self.max_members)
        with executor.batch():
            jobs = [executor.submit(task) for task in tasks]
        members = [[i for g in idx for i in groups[g]] for idx in per_engine]
        return list(zip(jobs, members, strict=True))

    def gather(self, submitted: Submitted) -> list[JobReturn]:
        """Each engine's returns (per group, flattened), back in the order of the sweep's jobs."""
        members = [m for _, m in submitted]
        returns = [[r for group in job.results()[0] for r in group] for job, _ in submitted]
        return in_job_order(members, returns)
