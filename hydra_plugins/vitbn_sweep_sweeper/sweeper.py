"""The project's sweeper: a grid, checks of every job before the first one launches, a summary.

0. The grid. As Hydra's basic sweeper: the product of the command's sweeps
   (``a=1,2 b=x,y``, ``range(1,4)``) and the config's ``hydra.sweeper.params``, the
   first key slowest, in batches of ``max_batch_size`` jobs. One difference: the
   compared axes (``model`` and ``model.norms.*``, ``PAIR_KEYS``) run fastest
   wherever they stand, so the jobs of a comparison (``vit`` and ``vitbnffn`` at one
   depth, lr and seed) launch side by side, and a sweep cut short leaves whole pairs.
   A sweep without a name (``sweep_name: auto``, no experiment) is named from its
   command (``grid_name``): the same command finds its directory again, another
   grid gets its own. Written on Hydra's public ``Sweeper`` interface.
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
import hashlib
import itertools
import logging
import re
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
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
from vitbn_sweep.identity import is_how_key, job_identity
from vitbn_sweep.schema import override_key
from vitbn_sweep.store import RESULT_FILE, claims, plain_config
from vitbn_sweep.store import record as sweep_record
from vitbn_sweep.store.record import SweepPlan
from vitbn_sweep.store.resume import JobDirConflict, finished
from vitbn_sweep.store.watch import SweepWatcher
from vitbn_sweep.validate import ConfigError, config_errors

log = logging.getLogger(__name__)
# The compared axes (a key also covers everything below it): the fastest in every grid.
PAIR_KEYS = ("model", "model.norms")
AUTO_NAME = "auto"  # sweep_name's default: the sweep is named from its command (grid_name)
NAME_MAX = 120  # characters of a sweep name from its command (its job dirs go below it)


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


def is_pair_key(key: str) -> bool:
    """True for an axis the analysis compares along (``model=vit,vitbnffn``)."""
    key = override_key(key)
    return key == "model" or any(key.startswith(f"{pair}.") for pair in PAIR_KEYS[1:])


def grid_axes(overrides: Sequence[Override]) -> dict[str, list[str]]:
    """Each key of the command (as written, ``+`` included) and its values, in order.

    A key given twice keeps its first place and its last values (a command-line
    sweep over an experiment's param).
    """
    axes: dict[str, list[str]] = {}
    for override in overrides:
        key = override.get_key_element()
        if not override.is_sweep_override():
            axes[key] = [override.get_value_element_as_str()]
        elif override.is_discrete_sweep():
            axes[key] = list(override.sweep_string_iterator())
        else:
            raise SweepConfigError(
                f"{key}: this sweeper runs lists (a=1,2) and range(...) sweeps, "
                f"not a {override.value_type.name if override.value_type else 'sweep'}"
            )
    return axes


def grid(overrides: Sequence[Override]) -> list[list[str]]:
    """Every job's override list, in launch order.

    The product of the overrides' values, the first key slowest, except that the
    compared axes (``is_pair_key``) run fastest. Each job lists its overrides in
    the keys' order, as Hydra's basic sweeper does.
    """
    axes = grid_axes(overrides)
    keys = list(axes)
    order = sorted(keys, key=is_pair_key)  # stable: the compared axes last, i.e. fastest
    jobs = []
    for values in itertools.product(*(axes[key] for key in order)):
        chosen = dict(zip(order, values, strict=True))
        jobs.append([f"{key}={chosen[key]}" for key in keys])
    return jobs


def _values_text(values: Sequence[str]) -> str:
    """A key's values in a sweep name: sorted, ``+``-joined; ``1-7`` for a run of integers."""

    def order(value: str) -> tuple[int, float, str]:
        with contextlib.suppress(ValueError):
            return (0, float(value), value)
        return (1, 0.0, value)

    unique = sorted(set(values), key=order)
    if len(unique) >= 3 and all(re.fullmatch(r"-?\d+", v) for v in unique):
        low, high = int(unique[0]), int(unique[-1])
        if [int(v) for v in unique] == list(range(low, high + 1)):
            return f"{low}-{high}"
    return "+".join(unique)


def grid_name(overrides: Sequence[Override]) -> str:
    """The directory name of a sweep that has no ``sweep_name``: what its command asks.

    Its identity overrides (how-keys left out), the swept keys first, each group
    sorted as in a job's directory name, each key's values sorted: both
    ``model=vit,vitbnffn model.depth=1,2,3`` and ``model.depth=3,2,1 model=vitbnffn,vit``
    give ``model.depth=1-3,model=vit+vitbnffn``. So the same command finds its sweep
    again, and another grid (other values, or another fixed key) gets its own.
    Filesystem-safe; a name that would pass ``NAME_MAX`` characters keeps its first
    whole overrides and ends in a hash of the whole.
    """
    swept, fixed = [], []
    for key, values in grid_axes(overrides).items():
        if not is_how_key(override_key(key)):
            part = re.sub(r"[^\w.=+\-\[\]]", "_", f"{override_key(key)}={_values_text(values)}")
            (swept if len(set(values)) > 1 else fixed).append(part)
    parts = sorted(swept) + sorted(fixed)
    name = ",".join(parts) or "default"
    if len(name) <= NAME_MAX:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    kept = ""
    for part in parts:
        if len(kept) + len(part) + 1 > NAME_MAX - len(digest) - 1:
            break
        kept += f"{part},"
    return f"{kept}{digest}"


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
        except SweepConfigError as exc:
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
                            if (job_dir / RESULT_FILE).is_file()
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
