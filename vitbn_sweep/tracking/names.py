"""A tracker run's display name: model, depth, lr and seed first, e.g. ``vitbnffn-d4-lr0.005-s2``.

Trackers' run tables cut names short, so the four keys a study compares lead; the
job's other overrides (its directory name) follow in a short form, e.g.
``vit-d1-lr0.003-s0 epochs=2,train_size=2000``. The live trackers (``logger=wandb``,
``logger=mlflow``) and ``python -m analysis export`` all name runs here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from vitbn_sweep.identity import DIRNAME_SEP, LEAD_KEYS, job_lead, override_key

# Overrides that the name's lead already says (a group choice ``model=vit`` included).
LEAD_OVERRIDES = frozenset({"model", *LEAD_KEYS.values()})
BRACKETS = {"[": "]", "{": "}", "(": ")"}


def split_overrides(dirname: str) -> list[str]:
    """``a=1,b=[2,3]`` -> ``["a=1", "b=[2,3]"]``: split at the commas outside brackets."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(dirname):
        if char in BRACKETS:
            depth += 1
        elif char in BRACKETS.values():
            depth = max(depth - 1, 0)
        elif char == DIRNAME_SEP and depth == 0:
            items.append(dirname[start:i])
            start = i + 1
    items.append(dirname[start:])
    return [item for item in items if item]


def short_override(override: str) -> str:
    """``data.train_size=2000`` -> ``train_size=2000``: the key without its top-level group."""
    key = override_key(override)
    value = override.split("=", 1)[1] if "=" in override else ""
    return f"{key.split('.', 1)[-1]}={value}"


def run_name(config: Mapping[str, Any], job: str = "") -> str:
    """The run name of the job that runs ``config``; ``job``: its directory in the sweep.

    ``job`` is the job's path relative to the sweep dir (its overrides, as
    ``tracking.identity.tracker_run`` gives it); empty for a job outside a sweep.
    """
    model, depth, lr, seed = job_lead(config).values()
    lead = f"{model}-d{depth}-lr{float(lr):g}-s{seed}"
    dirname = PurePosixPath(job).name if job else ""
    rest = [
        short_override(o)
        for o in split_overrides(dirname)
        if "=" in o and override_key(o) not in LEAD_OVERRIDES
    ]
    return f"{lead} {DIRNAME_SEP.join(rest)}" if rest else lead
