"""The grid of a sweep command: its jobs in launch order, its size, and its name.

As Hydra's basic sweeper: the product of the command's sweeps (``a=1,2 b=x,y``,
``range(1,4)``) and the config's ``hydra.sweeper.params`` (given first: the command
line wins), the first key slowest. One difference: the compared axes (``model`` and
``model.norms.*``, ``PAIR_KEYS``) run fastest wherever they stand, so the jobs of a
comparison (``vit`` and ``vitbnffn`` at one depth, lr and seed) launch side by side,
and a sweep cut short leaves whole pairs. A sweep without a name (``sweep_name: auto``)
is named from its command (``grid_name``). The sweeper launches this grid
(``hydra_plugins.vitbn_sweep_sweeper``); the analysis counts it (``grid_size``: the jobs
a sweep's command asked for).

Imports nothing heavy: the sweeper may run on a Slurm login node.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override

from vitbn_sweep.identity import is_how_key
from vitbn_sweep.schema import override_key
from vitbn_sweep.validate import ConfigError

# The compared axes (a key also covers everything below it): the fastest in every grid.
PAIR_KEYS = ("model", "model.norms")
AUTO_NAME = "auto"  # sweep_name's default: the sweep is named from its command (grid_name)
NAME_MAX = 120  # characters of a sweep name from its command (its job dirs go below it)


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
            raise ConfigError(
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


def values_text(values: Iterable[Any], sep: str = "+") -> str:
    """Values in a name or a sentence: sorted, unique, ``sep``-joined; ``1-7`` for a run of
    three or more integers (a sweep's depths, in its name and in the report's answer)."""

    def order(value: str) -> tuple[int, float, str]:
        with contextlib.suppress(ValueError):
            return (0, float(value), value)
        return (1, 0.0, value)

    unique = sorted({str(v) for v in values}, key=order)
    if len(unique) >= 3 and all(re.fullmatch(r"-?\d+", v) for v in unique):
        low, high = int(unique[0]), int(unique[-1])
        if [int(v) for v in unique] == list(range(low, high + 1)):
            return f"{low}-{high}"
    return sep.join(unique)


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
            part = re.sub(r"[^\w.=+\-\[\]]", "_", f"{override_key(key)}={values_text(values)}")
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


def grid_size(overrides: Sequence[str]) -> int | None:
    """Jobs in the grid of these overrides (the config's params first, then the command
    line's), per Hydra's own parser; None where it cannot be known (a glob, an interval)."""
    try:
        axes = grid_axes(OverridesParser.create().parse_overrides(list(overrides)))
        return math.prod(len(values) for values in axes.values())  # counted, not listed
    except Exception:  # noqa: BLE001 - future syntax too: size unknown, not fatal
        return None
