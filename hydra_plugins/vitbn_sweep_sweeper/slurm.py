"""Hydra's submitit Slurm launcher, plus claims: each job dir names its Slurm job at submission.

Between submission and start a job is only a line in Slurm's queue. The sweeper
has claimed its directory for the submitting process; once the array is
submitted, each claim is handed to the job's Slurm id (``123_4``), so the claim
stays live while the job is pending or running, even if the submitting process
is killed, and a rerun of the same command does not submit it again.

The handover wraps ``submitit.AutoExecutor.map_array`` for the duration of one
``launch`` call: the rest of the launcher is Hydra's own code, unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

from vitbn_sweep import claims
from vitbn_sweep.identity import job_dirname


class ClaimingSlurmLauncher(SlurmLauncher):
    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        import submitit

        assert self.config is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        token = os.environ.get(claims.TOKEN_ENV) or claims.new_sweep_token()
        submit = submitit.AutoExecutor.map_array

        def submit_and_claim(executor: Any, fn: Any, *iterables: Any) -> list[Any]:
            jobs = submit(executor, fn, *iterables)
            for job, overrides in zip(jobs, job_overrides, strict=True):
                owner = claims.this_owner(token, slurm_job_id=str(job.job_id))
                claims.hand_over(sweep_dir / job_dirname(overrides), owner)
            return jobs

        with mock.patch.object(submitit.AutoExecutor, "map_array", submit_and_claim):
            return super().launch(job_overrides, initial_job_idx)
