"""``hydra/launcher=stacked`` and ``engine``: a sweep's jobs trained in stacked groups.

    python -m vitbn_sweep -m hydra/launcher=stacked experiment=grid_c
    python -m vitbn_sweep -m hydra/launcher=engine experiment=article_full
    python -m vitbn_sweep -m hydra/launcher=engine hydra.launcher.devices=cuda:0,cuda:1 ...

The launcher receives the sweep's pending jobs (the sweeper has validated them and left
out those that ended), groups them with ``vitbn_sweep.stacked.group_jobs`` (same model
and settings; learning rate and seed may differ; at most ``max_members`` per group) and
runs them as ``StackedTask``s: every member's config is composed where the task runs, its
job directory set up as Hydra's ``run_job`` sets one up (``.hydra/`` with config, hydra
config and overrides; the member's log lines in ``<job.name>.log``), and the task's groups
train through ``vitbn_sweep.engine.train_groups``. It returns one ``JobReturn`` per job,
in the order received, as every Hydra launcher does.

``stacked``: one task per group. Groups run one after another (``n_jobs: 1``) or
``n_jobs`` at a time in worker processes (joblib's loky backend, as
``hydra/launcher=packed``): on a GPU, where these small models are bound by kernel
launches rather than arithmetic, several groups side by side keep it busy.

``engine``: one task per device, an engine. Instead of one process per group, the groups
are split over the devices (``vitbn_sweep.engine.plan``: balanced by predicted cost) and
each engine is one process that trains all of its groups together, one step of each in
turn, each group on its own CUDA stream. Every member whose ``trainer.device`` is ``auto``
or ``cuda`` trains on its engine's device (``cuda:i``; a how-key: the job's identity and
directory are unchanged; an explicit ``cpu`` or ``cuda:N`` is kept) and, where
``trainer.threads`` is unset, the engine's share of the cores. With one engine it runs in
this process; with several, one worker process each. So a ``stacked`` task is an engine
of one group that keeps its members' own devices.

A ``StackedTask`` is a plain picklable callable that holds only the Hydra context, the
sweep config and its members' overrides, so a scheduler can ship it to a node as is: one
Slurm array task per group or per engine with ``hydra/launcher=stacked_slurm`` or
``engine_slurm`` (``slurm.py``, which shares ``Stacked`` with the launchers here).

Kept free of torch imports at module level: Hydra imports every module under
``hydra_plugins`` at start-up.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from collections.abc import Iterator, Sequence
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


class StackedTask:
    """Stacked groups that one process trains together, runnable wherever it is unpickled;
    returns a JobReturn per job, group after group.

    ``device``: the device of the members whose ``trainer.device`` is ``auto`` or ``cuda``
    (``auto``: the first visible GPU, else the CPU, decided where the task runs); None
    keeps each member's own. ``threads``: the members' ``trainer.threads`` where unset."""

    def __init__(
        self,
        *,
        hydra_context: HydraContext,
        config: DictConfig,
        groups: list[list[Job]],
        singleton_state: dict[Any, Any],
        device: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.hydra_context = hydra_context
        self.config = config  # the sweep's config (with its hydra node)
        self.groups = groups
        self.singleton_state = singleton_state
        self.device, self.threads = device, threads

    def __call__(self) -> list[JobReturn]:
        from vitbn_sweep.engine import train_groups, visible_devices

        Singleton.set_state(self.singleton_state)  # Hydra's global state in this process
        setup_globals()
        _console_log(self.config)
        device = visible_devices()[0] if self.device == "auto" else self.device  # where it runs
        groups = [[self._prepare(job) for job in group] for group in self.groups]
        members = [m for group in groups for m in group]
        for m in members:
            trainer = m.config["trainer"]
            if device is not None and trainer["device"] in ("auto", "cuda"):  # cpu, cuda:N stay
                trainer["device"] = device
            if trainer["threads"] is None and self.threads is not None:
                trainer["threads"] = self.threads
        with _member_logs(members, self.config):
            outcomes = train_groups(
                [([m.config for m in group], [m.job_dir for m in group]) for group in groups]
            )
        return _returns(members, [outcome for group in outcomes for outcome in group])

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit's requeue hook (timeout, preemption): run the same task again; every
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
    """Hydra's job logging without its file handler (a task is many jobs: each member's
    lines go to its own job's log file, ``_member_logs``)."""
    job_logging = OmegaConf.to_container(config.hydra.job_logging, resolve=False)
    assert isinstance(job_logging, dict)
    job_logging.get("handlers", {}).pop("file", None)
    root = job_logging.get("root", {})
    root["handlers"] = [h for h in root.get("handlers", []) if h != "file"]
    configure_log(OmegaConf.create(job_logging), config.hydra.verbose)


@contextlib.contextmanager
def _member_logs(members: Sequence[_Prepared], config: DictConfig) -> Iterator[None]:
    """Each member's log lines in its job's log file, in Hydra's job log format."""
    from vitbn_sweep.lifecycle import JobLogFilter

    fmt = OmegaConf.select(config, "hydra.job_logging.formatters.simple.format")
    handlers = []
    for member in members:
        handler = logging.FileHandler(member.log_file)
        handler.setFormatter(logging.Formatter(fmt or DEFAULT_LOG_FORMAT))
        handler.addFilter(JobLogFilter(member.job_dir))
        logging.getLogger("vitbn_sweep").addHandler(handler)
        handlers.append(handler)
    try:
        yield
    finally:
        for handler in handlers:
            logging.getLogger("vitbn_sweep").removeHandler(handler)
            handler.close()


def _returns(members: Sequence[_Prepared], outcomes: Sequence[Any]) -> list[JobReturn]:
    """The members' JobReturns: failed where the outcome is the exception that failed it."""
    for member, outcome in zip(members, outcomes, strict=True):
        failed = isinstance(outcome, Exception)
        member.ret.status = JobStatus.FAILED if failed else JobStatus.COMPLETED
        member.ret.return_value = outcome
    return [m.ret for m in members]


class Stacked:
    """What every stacked launcher shares, here and on Slurm: the sweep's jobs in groups, and
    the tasks that train them (``tasks``). A launcher that runs engines says on which
    devices (``engine_devices``) and with how many threads each (``engine_threads``)."""

    max_members: int
    engine_threads: int | str | None = None  # per engine; auto: the cores shared evenly
    config: DictConfig | None
    hydra_context: HydraContext | None

    def engine_devices(self) -> list[str] | None:
        """One engine per device that gets work; None: one task per group instead."""
        return None

    def tasks(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> tuple[list[list[int]], list[StackedTask]]:
        """Per task the jobs it trains (indices into ``job_overrides``, in the order of its
        returns), and the tasks; the groups and engines logged."""
        assert self.config is not None and self.hydra_context is not None
        loader = self.hydra_context.config_loader
        configs = [
            store.plain_config(loader.load_sweep_config(self.config, list(overrides)))
            for overrides in job_overrides
        ]
        groups = group_jobs(configs, max_members=self.max_members)
        log.info("Launching %d jobs in %d stacked groups (at most %d members each)",
                 len(job_overrides), len(groups), self.max_members)  # fmt: skip
        for g, group in enumerate(groups):
            for i in group:
                log.info("\tgroup %d #%d : %s", g, initial_job_idx + i,
                         " ".join(filter_overrides(job_overrides[i])))  # fmt: skip
        devices = self.engine_devices()
        threads = None
        if devices is None:
            engines: list[tuple[str | None, list[int]]] = [(None, [g]) for g in range(len(groups))]
        else:
            from vitbn_sweep.engine import plan, threads_per_engine

            engines = list(plan([[configs[i] for i in group] for group in groups], devices))
            auto = self.engine_threads == "auto"
            threads = threads_per_engine(len(engines)) if auto else self.engine_threads
            for device, idx in engines:
                log.info("engine on %s: %d groups (%s), %s threads", device, len(idx),
                         ", ".join(map(str, idx)), threads or "torch's default")  # fmt: skip
        state = Singleton.get_state()
        tasks = [
            StackedTask(
                hydra_context=self.hydra_context,
                config=self.config,
                groups=[
                    [Job(initial_job_idx + i, list(job_overrides[i])) for i in groups[g]]
                    for g in idx
                ],
                singleton_state=state,
                device=device,
                threads=threads,
            )
            for device, idx in engines
        ]
        return [[i for g in idx for i in groups[g]] for _, idx in engines], tasks


class StackedLauncher(Stacked, Launcher):
    """``hydra/launcher=stacked``: a task per group, ``n_jobs`` at a time (None: all)."""

    def __init__(self, *, max_members: int = 8, n_jobs: int | None = 1) -> None:
        if n_jobs is not None and n_jobs < 1:
            raise ValueError(f"hydra.launcher.n_jobs={n_jobs}: must be 1 or more")
        self.max_members, self.n_jobs = max_members, n_jobs
        self.config, self.hydra_context = None, None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context = config, hydra_context

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        setup_globals()
        assert self.config is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        members, tasks = self.tasks(job_overrides, initial_job_idx)
        at_once = min(self.n_jobs or len(tasks), len(tasks))
        if at_once == 1:
            return in_job_order(members, [task() for task in tasks])
        from joblib import Parallel, delayed

        log.info("Running %d tasks, %d at a time (worker processes)", len(tasks), at_once)
        returns = Parallel(n_jobs=at_once, backend="loky")(delayed(task)() for task in tasks)
        return in_job_order(members, returns)


class EngineLauncher(StackedLauncher):
    """``hydra/launcher=engine``: an engine per device, all at once."""

    def __init__(
        self, *, max_members: int = 8, devices: str | Sequence[str] = "auto", threads: Any = "auto"
    ) -> None:
        if threads not in ("auto", None) and not (isinstance(threads, int) and threads > 0):
            raise ValueError(
                f"hydra.launcher.threads={threads!r}: use auto (the cores shared evenly by the "
                "engines), null (trainer.threads decides) or a positive number"
            )
        super().__init__(max_members=max_members, n_jobs=None)
        self.devices, self.engine_threads = devices, threads

    def engine_devices(self) -> list[str]:
        """The devices named, or with ``auto`` every visible GPU (decided at launch)."""
        from vitbn_sweep.engine import visible_devices

        return visible_devices(self.devices)


def in_job_order(
    members: list[list[int]], returns: Sequence[Sequence[JobReturn]]
) -> list[JobReturn]:
    """The tasks' JobReturns (``members``: per task its jobs) back in the order of the jobs."""
    ordered: dict[int, JobReturn] = {}
    for jobs, rets in zip(members, returns, strict=True):
        ordered.update(zip(jobs, rets, strict=True))
    return [ordered[i] for i in sorted(ordered)]
