"""``hydra/launcher=stacked_slurm``: a sweep's stacked groups on Slurm, one array task per group.

    python -m vitbn_sweep -m hydra/launcher=stacked_slurm experiment=article_full

The groups are those of ``hydra/launcher=stacked`` (``launcher.group_tasks``); the Slurm
resources, requeue and claims are those of ``hydra/launcher=slurm``: this is
``ClaimingSlurmLauncher`` submitting an array of ``GroupTask``s instead of one task per
job (each carries submitit's ``checkpoint`` hook, so a group cut by a timeout or a
preemption is requeued and every member continues from its own checkpoint). Once the
array is submitted, every member's claim names its group's Slurm job (``123_4``), so a
rerun meanwhile submits none of them again.

``max_members`` joins the launcher config as the first of its defaults (the node
``MEMBERS_NODE``): a key that Hydra's structured Slurm schema lacks can only precede it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn

from hydra_plugins.vitbn_sweep_stacked.launcher import group_tasks, in_job_order, log_groups
from hydra_plugins.vitbn_sweep_sweeper.slurm import ClaimingSlurmLauncher, Submitted

MAX_MEMBERS = 8
MEMBERS_NODE = ("vitbn_sweep_stacked", "members")  # (group, name) in Hydra's ConfigStore
ConfigStore.instance().store(
    group=MEMBERS_NODE[0], name=MEMBERS_NODE[1], node={"max_members": MAX_MEMBERS},
    provider="vitbn_sweep",
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
        groups, tasks = group_tasks(
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
