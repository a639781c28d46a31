"""A basic sweeper that checks every job of the sweep before launching the first.

Hydra's ``BasicSweeper`` only checks that each job's config *composes*; a bad
value (``model.depth=0``) would otherwise surface when that job starts, after
the jobs before it have trained. This sweeper composes every job's config,
runs ``vitbn_sweep.validate`` on each, and fails before anything is written or
launched, listing each bad job with its key and the valid range.

Kept free of torch imports: Hydra imports every module under ``hydra_plugins``
at start-up, and the sweeper may run on a Slurm login node.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import CompactHydraException
from omegaconf import DictConfig, OmegaConf, open_dict

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
        """Every job's override list, as the basic sweeper will launch them."""
        assert self.hydra_context is not None
        params = [f"{k}={v}" for k, v in (self.params or {}).items()]
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        batches = self.split_arguments(parser.parse_overrides(params + list(arguments)), None)
        return list(batches[0]) if batches else []

    def sweep(self, arguments: list[str]) -> Any:
        assert self.hydra_context is not None and self.config is not None
        jobs = self.job_overrides(arguments)
        problems = []
        for overrides in jobs:
            cfg = self.hydra_context.config_loader.load_sweep_config(
                master_config=self.config, sweep_overrides=list(overrides)
            )
            errors = config_errors(task_config(cfg))
            if errors:
                problems.append(f"job [{' '.join(overrides)}]:\n    " + "\n    ".join(errors))
        if problems:
            raise SweepConfigError(
                f"{len(problems)} of {len(jobs)} jobs have invalid config; nothing was launched.\n"
                + "\n".join(problems)
            )
        log.info("validated the config of all %d jobs", len(jobs))
        return super().sweep(arguments)
