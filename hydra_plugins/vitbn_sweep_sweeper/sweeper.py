"""The project's sweeper: a grid, checks of every job before the first one launches, a summary.

0. The grid (``vitbn_sweep.grid``): the product of the command's sweeps and the
   config's ``hydra.sweeper.params`` as Hydra's basic sweeper makes it, except that the
   compared axes run fastest, in batches of ``max_batch_size`` jobs. A sweep without a
   name (``sweep_name: auto``) is named from its command: the same command finds its
   directory again, another grid gets its own. Written on Hydra's public ``Sweeper``
   interface.
1. Validation. Hydra only checks that each job's config *composes*; a bad value
   (``model.depth=0``) would surface when that job starts, after the jobs before
   it have trained. Here every job's config runs through ``vitbn_sweep.validate``
   and the sweep fails before anything is written or launched, listing each bad
   job with its key and the valid range. The data too: MNIST is checked (and
   fetched into its home when missing, ``vitbn_sweep.data.home``) once, before
   any job starts; missing or corrupt data stops the sweep in a few lines.
2. Resume. A job directory is a pure function of the job's overrides, so the
   same command addresses the same directories again: jobs whose
   ``result.json`` says they ended (see ``vitbn_sweep.store.resume.finished``) are
   not launched at all, which on Slurm saves a submission per finished job.
   Failed jobs are (``resume.rerun_failed``, default true), diverged ones are not.
3. Claims. A job that a live run elsewhere holds (another command's local
   process, or its Slurm job, pending or running) is not launched again; the
   jobs launched here are claimed before launch (see ``vitbn_sweep.store.claims``), with
   their planned identity: a job whose config changed by the time it starts
   (``conf/`` edited meanwhile) is refused, and counts as failed.
4. A live status (``vitbn_sweep.store.watch.SweepWatcher``): one line per job
   that ends and a progress line (done / total, failed, diverged, ETA).
5. A record and a summary. Each command is recorded in the sweep directory
   (``vitbn_sweep.store.record``) and ends with one line: completed, diverged,
   failed, skipped, running elsewhere. The exit code is 1 when any job of the
   sweep is failed at the end or its data is missing, 2 for an invalid config
   (nothing launched).

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

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus
from hydra.errors import CompactHydraException
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from hydra_plugins.vitbn_sweep_stacked.launcher import Stacked
from vitbn_sweep import store
from vitbn_sweep.data.home import DataError, prepare
from vitbn_sweep.grid import AUTO_NAME, grid, grid_name
from vitbn_sweep.identity import job_identity
from vitbn_sweep.store import claims, plain_config
from vitbn_sweep.store import record as sweep_record
from vitbn_sweep.store.record import SweepPlan
from vitbn_sweep.store.resume import JobDirConflict, finished
from vitbn_sweep.store.watch import SweepWatcher
from vitbn_sweep.validate import ConfigError, config_errors

log = logging.getLogger(__name__)


class SweepConfigError(ConfigError, CompactHydraException):
    """Hydra prints this one as its message alone, without a stack trace."""


class SweepDataError(DataError):
    """The data of the jobs to launch is missing or corrupt (exit code 1, as a failed sweep)."""


def launcher_errors(task: dict[str, Any], launcher: Launcher) -> list[str]:
    """What ``task`` asks that ``launcher`` cannot do: CUDA graphs need stacked training
    (the launchers of ``hydra_plugins.vitbn_sweep_stacked``, through ``stacked_train``)."""
    if task.get("trainer", {}).get("cuda_graph") is True and not isinstance(launcher, Stacked):
        return [
            "trainer.cuda_graph=true replays the stacked training step: use "
            "hydra/launcher=stacked or stacked_slurm (or engine, engine_slurm; this sweep's "
            f"launcher is {type(launcher).__name__}), or trainer.cuda_graph=false"
        ]
    return []


class ValidatingSweeper(Sweeper):
    def __init__(self, max_batch_size: int | None, params: dict[str, str] | None = None) -> None:
        if max_batch_size is not None and max_batch_size < 1:
            raise SweepConfigError(
                f"hydra.sweeper.max_batch_size must be null or >= 1, got {max_batch_size}"
            )
        self.max_batch_size = max_batch_size
        self.params = dict(params or {})
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def job_overrides(self, arguments: list[str]) -> list[Sequence[str]]:
        """Every job's override list, in launch order (``grid``).

        A sweep without a name (``sweep_name: auto``) is named here from its command
        (``grid_name``), and each job gets that name.
        """
        assert self.hydra_context is not None and self.config is not None
        params = [f"{k}={v}" for k, v in self.params.items()]
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides(params + list(arguments))
        jobs = grid(overrides)
        if self.config.sweep_name == AUTO_NAME:
            name = grid_name(overrides)
            self.config.sweep_name = name  # the sweep dir, multirun.yaml (a rerun's place)
            jobs = [[*job, f"sweep_name='{name}'"] for job in jobs]
        return list(jobs)

    def plan(self, jobs: list[Sequence[str]], token: str) -> SweepPlan:
        """Which jobs to launch; raises if any job's config is invalid or their data is missing."""
        assert self.hydra_context is not None and self.config is not None
        assert self.launcher is not None
        problems: list[str] = []
        plan = SweepPlan(jobs=jobs, job_dirs={})
        data: dict[str, bool] = {}  # the pending jobs' data.root -> whether one may download
        liveness = claims.Liveness()
        for overrides in jobs:
            cfg = self.hydra_context.config_loader.load_sweep_config(
                master_config=self.config, sweep_overrides=list(overrides)
            )
            task = plain_config(cfg)
            errors = config_errors(task) + launcher_errors(task, self.launcher)
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
            root = str(task["data"]["root"])
            data[root] = data.get(root, False) or bool(task["data"]["download"])
        if problems:
            raise SweepConfigError(
                f"{len(problems)} of {len(jobs)} jobs cannot run; nothing was launched.\n"
                + "\n".join(problems)
            )
        for root, download in data.items():  # once per sweep, not once per job
            try:
                prepare(root, download=download)
            except DataError as exc:
                raise SweepDataError(
                    f"MNIST is not ready for the {len(plan.pending)} jobs to launch; "
                    f"nothing was launched.\n{exc}"
                ) from None
        return plan

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        tic = time.perf_counter()
        token = claims.new_sweep_token()
        try:
            plan = self.plan(self.job_overrides(arguments), token)
        except ConfigError as exc:  # the grid's or a job's (SweepConfigError)
            print(f"vitbn_sweep: {exc}", file=sys.stderr)
            sys.exit(2)
        except SweepDataError as exc:
            print(f"vitbn_sweep: {exc}", file=sys.stderr)
            sys.exit(1)
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
        me = claims.this_owner(token)
        claimed: list[Path] = []
        try:
            record = sweep_record.start(sweep_dir, self.config, plan)
            for overrides in plan.pending:  # claimed now: a rerun meanwhile does not launch them
                claims.claim(plan.dir(overrides), me, plan.identities[tuple(overrides)])
                claimed.append(plan.dir(overrides))
        except store.WriteError as exc:  # a full disk before any job: one line, nothing held
            for job_dir in claimed:
                claims.release(job_dir, me)
            log.error("sweep %s: %s; nothing was launched: free space and run the same "
                      "command again", sweep_dir, exc)  # fmt: skip
            sys.exit(1)
        errors: dict[tuple[str, ...], BaseException] = {}
        not_launched: set[tuple[str, ...]] = set()  # their batch failed to launch
        # One line per job that ends and a sweep progress line with an ETA, whatever the
        # launcher: the watcher reads only the job directories.
        watcher = SweepWatcher(sweep_dir, [plan.dir(o) for o in plan.jobs]).start()
        try:
            size = self.max_batch_size or max(len(plan.pending), 1)
            for start in range(0, len(plan.pending), size):
                batch = plan.pending[start : start + size]
                try:
                    returns = self.launcher.launch(batch, initial_job_idx=start)
                except Exception as exc:  # sbatch refused, a Slurm job lost, a full disk ...
                    not_launched.update(map(tuple, batch))
                    where = ""  # a failed write (Hydra's own files) may not name its file
                    if isinstance(exc, OSError):
                        where = f" writing {exc.filename or f'under {sweep_dir}'}"
                    log.error("launching %d jobs failed%s: %s: %s",
                              len(batch), where, type(exc).__name__, exc)  # fmt: skip
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
                            if store.result_written(job_dir)
                            else "before it wrote anything",
                        )
        finally:
            watcher.stop()
            for overrides in plan.pending:  # jobs that never started keep no claim of ours
                job_dir = plan.dir(overrides)
                claims.release(job_dir, me)
                failed = tuple(overrides) in errors or tuple(overrides) in not_launched
                if failed and store.untouched(job_dir):
                    shutil.rmtree(job_dir)  # failed before it wrote: nothing left behind
                    # (nor Hydra's .hydra/ files, which a full disk leaves 0 bytes)
                with contextlib.suppress(OSError):  # nor an empty directory
                    job_dir.rmdir()
        summary = sweep_record.finish(record, plan, errors)
        log.info("%s", summary.line)
        if summary.failed or not_launched:
            sys.exit(1)
        return summary
