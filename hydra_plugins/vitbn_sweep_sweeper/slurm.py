"""Hydra's submitit Slurm launcher, plus claims: each job dir names its Slurm job at submission.

Between submission and start a job is only a line in Slurm's queue. The sweeper
has claimed its directory for the submitting process; once the array is
submitted, each claim is handed to the job's Slurm id (``123_4``), so the claim
stays live while the job is pending or running, even if the submitting process
is killed, and a rerun of the same command does not submit it again.

The launcher builds submitit's ``AutoExecutor`` from the launcher config as Hydra's
``SlurmLauncher`` does (the same config keys, the same job callable: the launcher itself,
with its ``checkpoint`` hook for requeues), submits through submitit's public API, and
hands the claims over between submission and waiting. ``submit`` is what a subclass
changes (``hydra/launcher=stacked_slurm`` submits one task per stacked group).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import OmegaConf

from vitbn_sweep.identity import job_dirname
from vitbn_sweep.store import claims

log = logging.getLogger(__name__)

Submitted = list[tuple[Any, list[int]]]  # (submitit job, indices of the sweep jobs it runs)
INIT_KEYS = ("max_num_timeout",)  # launcher keys of the executor itself, not of a job
CLUSTER = "slurm"  # submitit's cluster name, and the prefix of its Slurm parameters


class ClaimingSlurmLauncher(SlurmLauncher):
    def executor(self) -> Any:
        """submitit's executor for this launcher's config, set up as Hydra's launcher does."""
        import submitit

        init = {f"{CLUSTER}_{k}": v for k, v in self.params.items() if k in INIT_KEYS}
        executor = submitit.AutoExecutor(
            cluster=CLUSTER, folder=self.params["submitit_folder"], **init
        )
        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{
                k if k in shared else f"{CLUSTER}_{k}": v
                for k, v in self.params.items()
                if k not in {*INIT_KEYS, "submitit_folder"}
            }
        )
        return executor

    def submit(
        self, executor: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Submitted:
        """One array task per job: this launcher called with the job's overrides."""
        params = []
        for i, overrides in enumerate(job_overrides):
            idx = initial_job_idx + i
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            state = Singleton.get_state()
            params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", state))
        jobs = executor.map_array(self, *zip(*params, strict=True))
        return [(job, [i]) for i, job in enumerate(jobs)]

    def gather(self, submitted: Submitted) -> list[JobReturn]:
        """The jobs' returns in the order of the sweep's jobs, once every task has ended."""
        return [job.results()[0] for job, _ in submitted]

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        assert self.config is not None and len(job_overrides) > 0
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        log.info("Submitit '%s' sweep output dir : %s", CLUSTER, sweep_dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            os.chmod(sweep_dir, mode=int(str(self.config.hydra.sweep.mode), 8))
        submitted = self.submit(self.executor(), job_overrides, initial_job_idx)
        token = os.environ.get(claims.TOKEN_ENV) or claims.new_sweep_token()
        for job, members in submitted:
            owner = claims.this_owner(token, slurm_job_id=str(job.job_id))
            for i in members:
                claims.hand_over(sweep_dir / job_dirname(job_overrides[i]), owner)
        return self.gather(submitted)
