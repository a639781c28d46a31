"""``hydra/launcher=stacked_slurm``: a sweep's stacked groups on Slurm, one array task per group.

    python -m vitbn_sweep -m hydra/launcher=stacked_slurm experiment=article_full

The groups are those of ``hydra/launcher=stacked`` (``launcher.group_tasks``); the Slurm
resources, requeue and claims are those of ``hydra/launcher=slurm``: this is Hydra's
submitit Slurm launcher with its one submission swapped, for the time of one ``launch``,
for an array of ``GroupTask``s (each carries submitit's ``checkpoint`` hook, so a group
cut by a timeout or a preemption is requeued and every member continues from its own
checkpoint). Once the array is submitted, every member's claim names its group's Slurm
job (``123_4``), as ``ClaimingSlurmLauncher`` does per job, so a rerun meanwhile submits
none of them again.

``max_members`` joins the launcher config as the first of its defaults (the node
``MEMBERS_NODE``): a key that Hydra's structured Slurm schema lacks can only precede it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

from hydra_plugins.vitbn_sweep_stacked.launcher import group_tasks, in_job_order, log_groups
from vitbn_sweep import claims
from vitbn_sweep.identity import job_dirname

log = logging.getLogger(__name__)


MAX_MEMBERS = 8
MEMBERS_NODE = ("vitbn_sweep_stacked", "members")  # (group, name) in Hydra's ConfigStore
ConfigStore.instance().store(
    group=MEMBERS_NODE[0], name=MEMBERS_NODE[1], node={"max_members": MAX_MEMBERS},
    provider="vitbn_sweep",
)  # fmt: skip


class StackedSlurmLauncher(SlurmLauncher):
    def __init__(self, *, max_members: int = MAX_MEMBERS, **params: Any) -> None:
        super().__init__(**params)
        self.max_members = max_members

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        import submitit

        assert self.config is not None and self.hydra_context is not None
        groups, tasks = group_tasks(
            self.hydra_context,
            self.config,
            job_overrides,
            initial_job_idx,
            max_members=self.max_members,
        )
        log_groups(groups, job_overrides, initial_job_idx, max_members=self.max_members)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        token = os.environ.get(claims.TOKEN_ENV) or claims.new_sweep_token()

        def submit_groups(executor: Any, fn: Any, *iterables: Any) -> list[Any]:
            with executor.batch():  # one array: a task per group instead of per job
                jobs = [executor.submit(task) for task in tasks]
            for job, group in zip(jobs, groups, strict=True):
                owner = claims.this_owner(token, slurm_job_id=str(job.job_id))
                for i in group:
                    claims.hand_over(sweep_dir / job_dirname(job_overrides[i]), owner)
            return jobs

        with mock.patch.object(submitit.AutoExecutor, "map_array", submit_groups):
            per_group = super().launch(job_overrides, initial_job_idx)  # a list per group
        return in_job_order(groups, per_group)  # type: ignore[arg-type]
