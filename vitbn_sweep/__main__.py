"""``python -m vitbn_sweep [-m] [overrides]``: the one train entrypoint."""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra.types import RunMode
from omegaconf import DictConfig

from vitbn_sweep import store
from vitbn_sweep.schema import override_errors
from vitbn_sweep.store.record import interrupt
from vitbn_sweep.train import run
from vitbn_sweep.validate import ConfigError

# This project's Hydra plugins (under hydra_plugins/).
PLUGINS = (
    "hydra_plugins.vitbn_sweep_sweeper.sweeper.ValidatingSweeper",
    "hydra_plugins.vitbn_sweep_sweeper.slurm.ClaimingSlurmLauncher",
    "hydra_plugins.vitbn_sweep_stacked.launcher.StackedLauncher",
    "hydra_plugins.vitbn_sweep_stacked.slurm.StackedSlurmLauncher",
    "hydra_plugins.vitbn_sweep_stacked.launcher.EngineLauncher",
    "hydra_plugins.vitbn_sweep_stacked.slurm.EngineSlurmLauncher",
)


def _register_plugins() -> None:
    """Hydra's plugin scan can miss hydra_plugins/ of an editable install: register them then."""
    known = Plugins.instance().class_name_to_class
    for path in PLUGINS:
        if path not in known:
            module, name = path.rsplit(".", 1)
            Plugins.instance().register(getattr(importlib.import_module(module), name))


def _remove_untouched_job_dir() -> None:
    """Remove the job dir Hydra made if it holds nothing but Hydra's own files."""
    out = Path(HydraConfig.get().runtime.output_dir)
    if store.untouched(out):
        shutil.rmtree(out)


def _full_error() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


@hydra.main(version_base="1.3", config_path="pkg://vitbn_sweep.conf", config_name="config")
def main(cfg: DictConfig) -> None:
    """Exit codes: 2 for an invalid config (nothing written), 1 for a failed single run.

    A failed single run prints its error in one line (the traceback is in its
    result.json, and on screen with ``HYDRA_FULL_ERROR=1``). In a multirun the
    error goes to the sweeper, which reports each failed job in one line.
    """
    try:
        run(cfg)
    except ConfigError as exc:
        _remove_untouched_job_dir()
        print(f"vitbn_sweep: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:
        if HydraConfig.get().mode == RunMode.MULTIRUN or _full_error():
            raise
        out = HydraConfig.get().runtime.output_dir
        print(
            f"vitbn_sweep: {type(exc).__name__}: {exc}\n(traceback: {out}/result.json, "
            "or set HYDRA_FULL_ERROR=1)",
            file=sys.stderr,
        )
        sys.exit(1)


def cli() -> None:
    """Console entry point (``vitbn-sweep``), the same as ``python -m vitbn_sweep``.

    Unknown keys and group options on the command line are refused here, before
    Hydra composes anything, with the nearest valid name (exit code 2).
    """
    errors = override_errors(sys.argv[1:])
    if errors:
        print("vitbn_sweep: invalid command line:\n  " + "\n  ".join(errors), file=sys.stderr)
        sys.exit(2)
    _register_plugins()
    # SIGTERM (kill, Slurm before a timeout) ends a run as Ctrl-C does: checkpoints kept,
    # claims released, the sweep's end line written; one line here, no traceback.
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # a background job ignores SIGINT
            signal.signal(signum, interrupt)
    logging.raiseExceptions = False  # a full disk: the failing write says so, not the logger
    try:
        main()
    except KeyboardInterrupt as exc:
        print(
            f"vitbn_sweep: interrupted ({exc or 'SIGINT'}): run the same command again to "
            "continue (each job from its last checkpoint)",
            file=sys.stderr,
        )
        sys.exit(130)


if __name__ == "__main__":
    cli()
