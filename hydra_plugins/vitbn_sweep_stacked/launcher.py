"""``hydra/launcher=stacked``: a sweep's jobs trained in groups, one stacked model per group.

    python -m vitbn_sweep -m hydra/launcher=stacked experiment=grid_c

The launcher receives the sweep's pending jobs (the sweeper has validated them and left
out those that ended), groups them with ``vitbn_sweep.stacked.group_jobs`` (same model
and settings; learning rate and seed may differ; at most ``max_members`` per group) and
runs each group as one ``GroupTask``: every member's config is composed where the task
runs, its job directory set up as Hydra's ``run_job`` sets one up (``.hydra/`` with
config, hydra config and overrides; the member's log lines in ``<job.name>.log``), and the
group trains through ``vitbn_sweep.stacked_train.train_group``. It returns one
``JobReturn`` per job, in the order received, as every Hydra launcher does.

A ``GroupTask`` is a plain picklable callable that holds only the Hydra context, the sweep
config and its members' overrides, so a scheduler can ship it to a node as is: one Slurm
array task per group with ``hydra/launcher=stacked_slurm`` (``slurm.py``). Here, groups run
one after another (``n_jobs: 1``) or ``n_jobs`` at a time in worker processes (joblib's
loky backend, as ``hydra/launcher=packed``): on a GPU, where these small models are bound
by kernel launches rather than arithmetic, several groups side by side keep it busy.

Kept free of torch imports at module level: Hydra imports every module under
``hydra_plugins`` at start-up.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import (
    JobReturn,
    JobRuntime,
    JobStatus,
    configure_log,
    filter_overrides,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from vitbn_sweep import store
from vitbn_sweep.stacked import group_jobs

log = logging.getLogger(__name__)
DEFAULT_LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


# No dataclasses here: Hydra's plugin scan runs this module before it is in sys.modules,
# where dataclasses look up string annotations.
class Job(NamedTuple):
    num: int  # the job's index in the sweep (hydra.job.num)
    overrides: list[str]


class _Prepared(NamedTuple):
    job_dir: Path
    config: dict[str, Any]  # resolved, without the hydra node
    ret: JobReturn
    log_file: Path


class GroupTask:
    """One group of a sweep, runnable wherever it is unpickled; returns a JobReturn per job."""

    def __init__(
        self,
        *,
        hydra_context: HydraContext,
        config: DictConfig,
        jobs: list[Job],
        singleton_state: dict[Any, Any],
    ) -> None:
        self.hydra_context = hydra_context
        self.config = config  # the sweep's config (with its hydra node)
        self.jobs = jobs
        self.singleton_state = singleton_state

    def __call__(self) -> list[JobReturn]:
        from vitbn_sweep.stacked_train import train_group

        Singleton.set_state(self.singleton_state)
        setup_globals()
        _console_log(self.config)
        members = [self._prepare(job) for job in self.jobs]
        handlers = [_member_log(m.job_dir, m.log_file, self.config) for m in members]
        try:
            outcomes: Sequence[Any] = train_group(
                [m.config for m in members], [m.job_dir for m in members]
            )
        except Exception as exc:  # nothing trained (invalid config, ...): every job failed
            outcomes = [exc] * len(members)
        finally:
            for handler in handlers:
                logging.getLogger("vitbn_sweep").removeHandler(handler)
                handler.close()
        for member, outcome in zip(members, outcomes, strict=True):
            failed = isinstance(outcome, Exception)
            member.ret.status = JobStatus.FAILED if failed else JobStatus.COMPLETED
            member.ret.return_value = outcome
        return [m.ret for m in members]

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit's requeue hook (timeout, preemption): run the same group again; every
        member continues from its own checkpoint."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)

    def _prepare(self, job: Job) -> _Prepared:
        """The member's composed config and job directory, as Hydra's run_job prepares them."""
        config = self.hydra_context.config_loader.load_sweep_config(self.config, job.overrides)
        with open_dict(config):
            config.hydra.job.id = f"{config.hydra.job.name}_{job.num}"
            config.hydra.job.num = job.num
        HydraConfig.instance().set_config(config)
        job_dir = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)
        with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
            config.hydra.runtime.output_dir = str(job_dir.resolve())
        HydraConfig.instance().set_config(config)
        task_cfg = copy.deepcopy(config)
        with read_write(task_cfg), open_dict(task_cfg):
            del task_cfg["hydra"]
        ret = JobReturn(
            overrides=list(job.overrides),
            cfg=task_cfg,
            hydra_cfg=copy.deepcopy(config),
            working_dir=os.getcwd(),
            task_name=JobRuntime.instance().get("name"),
        )
        job_dir.mkdir(parents=True, exist_ok=True)
        if config.hydra.output_subdir is not None:
            hydra_dir = job_dir / str(config.hydra.output_subdir)
            store.write_yaml(hydra_dir / "config.yaml", task_cfg)  # atomic: never 0 bytes
            store.write_yaml(hydra_dir / "hydra.yaml", config)
            store.write_yaml(hydra_dir / "overrides.yaml", config.hydra.overrides.task)
        return _Prepared(
            job_dir=job_dir,
            config=store.plain_config(config),
            ret=ret,
            log_file=job_dir / f"{config.hydra.job.name}.log",
        )


def _console_log(config: DictConfig) -> None:
    """Hydra's job logging without its file handler (a group is many jobs: each member's
    lines go to its own job's log file, ``_member_log``)."""
    job_logging = OmegaConf.to_container(config.hydra.job_logging, resolve=False)
    assert isinstance(job_logging, dict)
    job_logging.get("handlers", {}).pop("file", None)
    root = job_logging.get("root", {})
    root["handlers"] = [h for h in root.get("handlers", []) if h != "file"]
    configure_log(OmegaConf.create(job_logging), config.hydra.verbose)


def _member_log(job_dir: Path, path: Path, config: DictConfig) -> logging.Handler:
    """A file handler for the log lines about one member, in Hydra's job log format."""
    from vitbn_sweep.lifecycle import JobLogFilter

    fmt = OmegaConf.select(config, "hydra.job_logging.formatters.simple.format")
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(fmt or DEFAULT_LOG_FORMAT))
    handler.addFilter(JobLogFilter(job_dir))
    logging.getLogger("vitbn_sweep").addHandler(handler)
    return handler


class StackedLauncher(Launcher):
    def __init__(self, *, max_members: int = 8, n_jobs: int = 1) -> None:
        if n_jobs < 1:
            raise ValueError(f"hydra.launcher.n_jobs={n_jobs}: must be 1 or more")
        self.max_members, self.n_jobs = max_members, n_jobs
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.task_function, self.hydra_context = config, task_function, hydra_context

    def group_tasks(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> tuple[list[list[int]], list[GroupTask]]:
        """The jobs' groups (indices into ``job_overrides``) and a task per group."""
        assert self.config is not None and self.hydra_context is not None
        return group_tasks(
            self.hydra_context,
            self.config,
            job_overrides,
            initial_job_idx,
            max_members=self.max_members,
        )

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        setup_globals()
        assert self.config is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        groups, tasks = self.group_tasks(job_overrides, initial_job_idx)
        log_groups(groups, job_overrides, initial_job_idx, max_members=self.max_members)
        if self.n_jobs == 1 or len(tasks) == 1:
            return in_job_order(groups, [task() for task in tasks])
        from joblib import Parallel, delayed

        log.info("Running %d groups, %d at a time (worker processes)", len(tasks), self.n_jobs)
        returns = Parallel(n_jobs=min(self.n_jobs, len(tasks)), backend="loky")(
            delayed(task)() for task in tasks
        )
        return in_job_order(groups, returns)


def group_tasks(
    hydra_context: HydraContext,
    config: DictConfig,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
    *,
    max_members: int,
) -> tuple[list[list[int]], list[GroupTask]]:
    """The jobs' groups (indices into ``job_overrides``) and a task per group."""
    loader = hydra_context.config_loader
    configs = [
        store.plain_config(loader.load_sweep_config(config, list(overrides)))
        for overrides in job_overrides
    ]
    groups = group_jobs(configs, max_members=max_members)
    state = Singleton.get_state()
    tasks = [
        GroupTask(
            hydra_context=hydra_context,
            config=config,
            jobs=[Job(initial_job_idx + i, list(job_overrides[i])) for i in group],
            singleton_state=state,
        )
        for group in groups
    ]
    return groups, tasks


def log_groups(
    groups: list[list[int]],
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
    *,
    max_members: int,
) -> None:
    log.info(
        "Launching %d jobs in %d stacked groups (at most %d members each)",
        len(job_overrides),
        len(groups),
        max_members,
    )
    for g, group in enumerate(groups):
        for i in group:
            log.info("\tgroup %d #%d : %s", g, initial_job_idx + i,
                     " ".join(filter_overrides(job_overrides[i])))  # fmt: skip


def in_job_order(
    groups: list[list[int]], returns: Sequence[Sequence[JobReturn]]
) -> list[JobReturn]:
    """The groups' JobReturns back in the order of the jobs."""
    ordered: dict[int, JobReturn] = {}
    for group, rets in zip(groups, returns, strict=True):
        ordered.update(zip(group, rets, strict=True))
    return [ordered[i] for i in sorted(ordered)]
