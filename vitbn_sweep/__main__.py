"""``python -m vitbn_sweep [-m] [overrides]``: the one train entrypoint."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from omegaconf import DictConfig

from vitbn_sweep.train import run
from vitbn_sweep.validate import ConfigError

SWEEPER = "hydra_plugins.vitbn_sweep_sweeper.sweeper.ValidatingSweeper"


def _register_sweeper() -> None:
    """Hydra's plugin scan can miss hydra_plugins/ of an editable install: register it then."""
    if SWEEPER not in Plugins.instance().class_name_to_class:
        from hydra_plugins.vitbn_sweep_sweeper.sweeper import ValidatingSweeper

        Plugins.instance().register(ValidatingSweeper)


HYDRA_LEFTOVERS = {".hydra", "vitbn_sweep.log"}


def _remove_untouched_job_dir() -> None:
    """Remove the job dir Hydra made if it holds nothing but Hydra's own files."""
    out = Path(HydraConfig.get().runtime.output_dir)
    if out.is_dir() and {p.name for p in out.iterdir()} <= HYDRA_LEFTOVERS:
        shutil.rmtree(out)


@hydra.main(version_base="1.3", config_path="pkg://vitbn_sweep.conf", config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except ConfigError as exc:
        _remove_untouched_job_dir()
        print(f"vitbn_sweep: {exc}", file=sys.stderr)
        sys.exit(2)


def cli() -> None:
    """Console entry point (``vitbn-sweep``), the same as ``python -m vitbn_sweep``."""
    _register_sweeper()
    main()


if __name__ == "__main__":
    cli()
