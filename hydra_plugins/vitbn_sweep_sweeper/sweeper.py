"""The basic sweeper, plus checks of every job before the first one launches, and a summary.

1. Validation. Hydra's ``BasicSweeper`` only checks that each job's config
   *composes*; a bad value (``model.depth=0``) would surface when that job
   starts, after the jobs before it have trained. Here every job's config runs
   through ``vitbn_sweep.validate`` and the sweep fails before anything is
   written or launched, listing each bad job with its key and the valid range.
2. Resume. A job directory is a pure function of the job's overrides, so the
   same command addresses the same directories again: jobs whose
   ``result.json`` says they ended (see ``vitbn_sweep.resume.finished``) are
   not launched at all, which on Slurm saves a submission per finished job.
   Failed jobs are (``resume.rerun_failed``, default true), diverged ones are not.
3. Claims. A job that a live run elsewhere holds (another command's local
   process, or its Slurm job, pending or running) is not launched again; the
   jobs launched here are claimed before launch (see ``vitbn_sweep.claims``), with
   their planned identity: a job whose config changed by the time it starts
   (``conf/`` edited meanwhile) is refused, and counts as failed.
4. A live status (``vitbn_sweep.sweep_watch.SweepWatcher``): one line per job
   that ends and a progress line (done / total, failed, diverged, ETA).
5. A record and a summary. Each command is recorded in the sweep directory
   (``vitbn_sweep.sweep_record``) and ends with one line: completed, diverged,
   failed, skipped, running elsewhere. The exit code is 1 when any job of the
   sweep is failed at the end, 2 for an invalid config (nothing launched).

Kept free of torch imports: Hydra imports every module under ``hydra_plugins``
at start-up, and the sweeper may run on a Slurm login node.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobStatus
from hydra.errors import CompactHydraException
from omegaconf import DictConfig

from vitbn_sweep import claims, sweep_record
from vitbn_sweep.identity import job_identity
from vitbn_sweep.results import RESULT_FILE
from vitbn_sweep.resume import JobDirConflict, finished
from vitbn_sweep.store import plain_config as task_config
from vitbn_sweep.sweep_record import SweepPlan
from vitbn_sweep.sweep_watch import SweepWatcher
from vitbn_sweep.validate import ConfigError, config_errors

log = logging.getLogger(__name__)
STACKED_LAUNCHERS = (  # the launchers that train through vitbn_sweep.stacked_train
    "hydra_plugins.vitbn_sweep_stacked.launcher.StackedLauncher",
    "hydra_plugins.vitbn_sweep_stacked.slurm.StackedSlurmLauncher",
)


class SweepConfigError(ConfigError, CompactHydraException):
    """Hydra prints this one as its message alone, without a stack trace."""


def launcher_errors(task: dict[str, Any], launcher: DictConfig) -> list[str]:
    """What ``task`` asks that ``launcher`` cannot do: CUDA graphs need stacked training."""
    target = str(launcher.get("_target_", ""))
    if task.get("trainer", {}).get("cuda_graph") is True and target not in STACKED_LAUNCHERS:
        return [
            "trainer.cuda_graph=true replays the stacked training step: use "
            "hydra/launcher=stacked or stacked_slurm (this sweep's launcher is "
            f"{target.rpartition('.')[2] or target!r}), or trainer.cuda_graph=false"
        ]
    return []


class ValidatingSweeper(BasicSweeper):
    def job_overrides(self, arguments: list[str]) -> list[Sequence[str]]:
        """Every job's override list, as the basic sweeper would launch them."""
        assert self.hydra_context is not None
        params = [f"{k}={v}" for k, v in (self.params or {}).items()]
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        batches = self.split_arguments(parser.parse_overrides(params + list(arguments)), None)
        return list(batches[0]) if batches else []

    def plan(self, jobs: list[Sequence[str]], token: str) -> SweepPlan:
        """Which jobs to launch; raises if any job's config is invalid."""
        assert self.hydra_context is not None and self.config is not None
        problems: list[str] = []
        plan = SweepPlan(jobs=jobs, job_dirs={})
        liveness = claims.Liveness()
        for overrides in jobs:
            cfg = self.hydra_context.config_loader.load_sweep_config(
                master_config=self.config, sweep_overrides=list(overrides)
            )
            task = task_config(cfg)
            errors = config_errors(task) + launcher_errors(task, cfg.hydra.launcher)
            job_dir = Path(cfg.hydra.sweep.dir) / str(cfg.hydra.sweep.subdir)
            plan.job_dirs[tuple(overrides)] = job_dir
            if not errors:
                try:
                    if finished(job_dir, task) is not None:
                        plan.ended.append(overrides)
                        continue
                except JobDirConflict as exc:
                    errors = [str(exc)]
            if errors:
                problems.append(f"job [{' '.join(overrides)}]:\n    " + "\n    ".join(errors))
                continue
            other = claims.foreign_live_owner(job_dir, token, liveness)
            if other is not None:
                plan.elsewhere[tuple(overrides)] = other
                continue
            plan.pending.append(overrides)
            plan.identities[tuple(overrides)] = job_identity(task)
        if problems:
            raise SweepConfigError(
                f"{len(problems)} of {len(jobs)} jobs cannot run; nothing was launched.\n"
                + "\n".join(problems)
            )
        return plan

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        tic = time.perf_counter()
        token = claims.new_sweep_token()
        try:
            plan = self.plan(self.job_overrides(arguments), token)
        except SweepConfigError as exc:
            print(f"vitbn_sweep: {exc}", file=sys.stderr)
            sys.exit(2)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        log.info(
            "sweep %s: %d jobs, %d already ended (skipped), %d running elsewhere, "
            "%d to launch (checked in %.2f s)",
            sweep_dir,
            len(plan.jobs),
            len(plan.ended),
            len(plan.elsewhere),
            len(plan.pending),
            time.perf_counter() - tic,
        )
        for overrides, owner in plan.elsewhere.items():
            log.warning("not launched, %s runs it: %s", owner, plan.dir(overrides).name)
        record = sweep_record.start(sweep_dir, self.config, plan)
        me = claims.this_owner(token)
        for overrides in plan.pending:  # claimed now: a rerun meanwhile does not launch them
            claims.claim(plan.dir(overrides), me, plan.identities[tuple(overrides)])
        errors: dict[tuple[str, ...], BaseException] = {}
        launch_failed = False
        # One line per job that ends and a sweep progress line with an ETA, whatever the
        # launcher: the watcher reads only the job directories.
        watcher = SweepWatcher(sweep_dir, [plan.dir(o) for o in plan.jobs]).start()
        try:
            size = self.max_batch_size or max(len(plan.pending), 1)
            for start in range(0, len(plan.pending), size):
                batch = plan.pending[start : start + size]
                try:
                    returns = self.launcher.launch(batch, initial_job_idx=start)
                except Exception as exc:  # sbatch refused, a Slurm job lost, ...
                    launch_failed = True
                    log.error(
                        "launching %d jobs failed: %s: %s", len(batch), type(exc).__name__, exc
                    )
                    continue
                for overrides, ret in zip(batch, returns, strict=True):
                    if ret.status == JobStatus.FAILED:
                        errors[tuple(overrides)] = ret._return_value
                        job_dir = plan.dir(overrides)
                        log.error(
                            "job failed: %s: %s: %s (%s)",
                            job_dir.name,
                            type(ret._return_value).__name__,
                            ret._return_value,
                            "traceback in its result.json"
                            if (job_dir / RESULT_FILE).is_file()
                            else "before it wrote anything",
                        )
        finally:
            watcher.stop()
            for overrides in plan.pending:  # jobs that never started keep no claim of ours
                job_dir = plan.dir(overrides)
                claims.release(job_dir, me)
                if tuple(overrides) in errors and sweep_record.untouched(job_dir):
                    shutil.rmtree(job_dir)  # failed before it wrote: nothing left behind
                with contextlib.suppress(OSError):  # nor an empty directory
                    job_dir.rmdir()
        summary = sweep_record.finish(record, plan, errors)
        log.info("%s", summary.line)
        if summary.failed or launch_failed:
            sys.exit(1)
        return summary
