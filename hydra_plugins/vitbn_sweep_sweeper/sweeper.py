"""The basic sweeper, plus two checks of every job before the first one launches.

1. Validation. Hydra's ``BasicSweeper`` only checks that each job's config
   *composes*; a bad value (``model.depth=0``) would surface when that job
   starts, after the jobs before it have trained. Here every job's config runs
   through ``vitbn_sweep.validate`` and the sweep fails before anything is
   written or launched, listing each bad job with its key and the valid range.
2. Resume. A job directory is a pure function of the job's overrides, so the
   same command addresses the same directories again: jobs whose
   ``result.json`` says they ended (see ``vitbn_sweep.resume.finished``) are
   not launched at all, which on Slurm saves a submission per finished job.

Kept free of torch imports: Hydra imports every module under ``hydra_plugins``
at start-up, and the sweeper may run on a Slurm login node.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import CompactHydraException
from omegaconf import DictConfig, OmegaConf, open_dict

from vitbn_sweep.resume import JobDirConflict, finished
from vitbn_sweep.validate import ConfigError, config_errors

log = logging.getLogger(__name__)


class SweepConfigError(ConfigError, CompactHydraException):
    """Hydra prints this one as its message alone, without a stack trace."""


def task_config(cfg: DictConfig) -> dict[str, Any]:
    """The job's own config as a resolved plain dict, without the ``hydra`` node."""
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


class ValidatingSweeper(BasicSweeper):
    def job_overrides(self, arguments: list[str]) -> list[Sequence[str]]:
        """Every job's override list, as the basic sweeper would launch them."""
        assert self.hydra_context is not None
        params = [f"{k}={v}" for k, v in (self.params or {}).items()]
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        batches = self.split_arguments(parser.parse_overrides(params + list(arguments)), None)
        return list(batches[0]) if batches else []

    def pending_jobs(self, jobs: list[Sequence[str]]) -> list[Sequence[str]]:
        """The jobs still to run; raises if any job's config is invalid."""
        assert self.hydra_context is not None and self.config is not None
        problems, pending = [], []
        for overrides in jobs:
            cfg = self.hydra_context.config_loader.load_sweep_config(
                master_config=self.config, sweep_overrides=list(overrides)
            )
            task = task_config(cfg)
            errors = config_errors(task)
            job_dir = Path(cfg.hydra.sweep.dir) / str(cfg.hydra.sweep.subdir)
            if not errors:
                try:
                    if finished(job_dir, task) is not None:
                        continue
                except JobDirConflict as exc:
                    errors = [str(exc)]
            if errors:
                problems.append(f"job [{' '.join(overrides)}]:\n    " + "\n    ".join(errors))
            pending.append(overrides)
        if problems:
            raise SweepConfigError(
                f"{len(problems)} of {len(jobs)} jobs cannot run; nothing was launched.\n"
                + "\n".join(problems)
            )
        return pending

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        tic = time.perf_counter()
        jobs = self.job_overrides(arguments)
        pending = self.pending_jobs(jobs)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        log.info(
            "sweep %s: %d jobs, %d already ended (skipped), %d to launch (checked in %.2f s)",
            sweep_dir,
            len(jobs),
            len(jobs) - len(pending),
            len(pending),
            time.perf_counter() - tic,
        )
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        returns = []
        size = self.max_batch_size or max(len(pending), 1)
        for start in range(0, len(pending), size):
            batch = pending[start : start + size]
            results = self.launcher.launch(batch, initial_job_idx=start)
            for r in results:
                _ = r.return_value  # re-raises the exception of a failed job
            returns.append(results)
        return returns
