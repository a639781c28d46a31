"""Publish the analysis' answer to wandb: a report run in the sweep's project and group.

The report step calls ``publish_report`` with its tables (the critical-depth table
first of all) and figure files; they appear on the dashboard as ``wandb.Table`` and
``wandb.Image`` panels of a run with job_type ``report``. One report run per sweep
(its id derives from project and group): publishing again adds a new step to it.
Without credentials it is written offline with one warning naming ``wandb sync``,
exactly as the job runs are.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vitbn_sweep.tracking.run import hashed_id
from vitbn_sweep.tracking.wandb_tracker import REPORT_JOB_TYPE, resolve_mode

log = logging.getLogger(__name__)
TABLES_KEY, FIGURES_KEY = "tables/{}", "figures/{}"  # the report run's history keys, by name


def publish_report(
    tables: Mapping[str, Any],
    figures: Mapping[str, str | Path],
    *,
    project: str,
    group: str,
    wandb_dir: str | Path,
    entity: str | None = None,
    mode: str = "auto",
) -> str:
    """Log ``tables`` (name -> pandas DataFrame) and ``figures`` (name -> image file).

    ``wandb_dir``: where the run's local files go (e.g. the report folder). Returns
    the run's URL when online, else the local run directory. wandb errors propagate:
    the caller decides whether a failed publish fails the report.
    """
    import wandb

    resolved, why = resolve_mode(mode, os.environ)
    Path(wandb_dir).mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=project,
        entity=entity,
        group=group,
        job_type=REPORT_JOB_TYPE,
        name=f"report {group}",
        id=hashed_id("report", f"{project}/{group}"),
        resume="allow",
        tags=["report", f"sweep={group}"[:64]],
        dir=str(wandb_dir),
        mode=None if why == "WANDB_MODE" else resolved,
        reinit="finish_previous",
    )
    try:
        payload: dict[str, Any] = {
            # missing values (pandas NA in nullable columns) as None: JSON has no NA
            TABLES_KEY.format(name): wandb.Table(
                dataframe=frame.astype(object).where(frame.notna(), None), allow_mixed_types=True
            )
            for name, frame in tables.items()
        }
        payload.update(
            {FIGURES_KEY.format(name): wandb.Image(str(p)) for name, p in figures.items()}
        )
        run.log(payload)
        where = str(Path(run.dir).parent) if run.offline else run.url
    finally:
        run.finish()
    if why == "no credentials":
        log.warning(
            "wandb: no credentials found: the report run was written offline. Upload it with:  "
            "wandb sync %s",
            where,
        )
    return str(where)
