"""``hydra/launcher=stacked_slurm``: a sweep's stacked groups on Slurm, one array task per group;
``hydra/launcher=engine_slurm``: one array task per GPU, each an engine carrying several groups.

    python -m vitbn_sweep -m hydra/launcher=stacked_slurm experiment=article_full
    python -m vitbn_sweep -m hydra/launcher=engine_slurm hydra.launcher.engines=2 experiment=...

The groups and engines are those of ``hydra/launcher=stacked`` and ``engine``
(``launcher.Stacked``); the Slurm resources, requeue and claims are those of
``hydra/launcher=slurm``: this is ``ClaimingSlurmLauncher`` submitting an array of
``StackedTask``s instead of one task per job (each carries submitit's ``checkpoint`` hook,
so a task cut by a timeout or a preemption is requeued and every member continues from its
own checkpoint). Once the array is submitted, every member's claim names its task's Slurm
job (``123_4``), so a rerun meanwhile submits none of them again.

``engine_slurm`` splits the groups over ``engines`` array tasks by predicted cost
(``vitbn_sweep.engine.plan``), each task on the first GPU Slurm gives it (the CPU on a
node without: ``gpus_per_node=null``) and its ``cpus_per_task`` as torch threads.

``max_members`` (and ``engines``) join the launcher config as the first of its defaults
(the nodes ``MEMBERS_NODE``, ``ENGINES_NODE``): a key that Hydra's structured Slurm schema
lacks can only precede it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn

from hydra_plugins.vitbn_sweep_stacked.launcher import Stacked, in_job_order
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


class StackedSlurmLauncher(Stacked, ClaimingSlurmLauncher):
    def __init__(self, *, max_members: int = MAX_MEMBERS, **params: Any) -> None:
        super().__init__(**params)
        self.max_members = max_members

    def submit(
        self, executor: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Submitted:
        """One array task per ``StackedTask`` (a group, or an engine), in one batch."""
        members, tasks = self.tasks(job_overrides, initial_job_idx)
        with executor.batch():
            jobs = [executor.submit(task) for task in tasks]
        return list(zip(jobs, members, strict=True))

    def gather(self, submitted: Submitted) -> list[JobReturn]:
        """Each task's returns, back in the order of the sweep's jobs."""
        return in_job_order([m for _, m in submitted], [job.results()[0] for job, _ in submitted])


class EngineSlurmLauncher(StackedSlurmLauncher):
    def __init__(self, *, max_members: int = MAX_MEMBERS, engines: int = 1, **params: Any) -> None:
        if engines < 1:
            raise ValueError(f"hydra.launcher.engines={engines}: must be 1 or more")
        super().__init__(max_members=max_members, **params)
        self.engines = engines

    def engine_devices(self) -> list[str]:
        """One engine per array task, on the first GPU Slurm gives it (``auto``: decided there;
        its threads: Slurm's ``cpus_per_task``, which torch takes by default)."""
        return ["auto"] * self.engines
