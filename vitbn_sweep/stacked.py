"""Which jobs of a sweep train together as one stacked model (``hydra/launcher=stacked``).

Jobs stack when they compute the same model on the same data the same way and differ
only in what each member of a stacked model has for itself (``MEMBER_KEYS``: the
learning rate and the seed). So a group is: equal job identity (``vitbn_sweep.identity``)
once the member keys are left out, and equal settings of the one process they share
(``PROCESS_KEYS``: how-keys such as the device and thread count, ``conf/how_keys.yaml``).
Other how-keys (logger, resume, paths, data root) stay each member's own.

Only the fast pipeline stacks: its data stream comes from explicit generators seeded by
(seed, epoch). The torchvision pipeline draws its augmentation from the process-wide RNG,
so members side by side would draw each other's numbers: such a job is a group of its own.

Imports nothing heavy: the launcher groups a sweep on a Slurm login node.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from vitbn_sweep.identity import PROCESS_KEYS, dig, job_identity, without

MEMBER_KEYS: tuple[str, ...] = ("optim.lr", "trainer.seed")
STACKABLE_PIPELINES = ("fast",)


def group_key(config: Mapping[str, Any]) -> str:
    """Jobs with equal keys can be members of one stacked model (a resolved job config)."""
    identity = job_identity(config)
    if dig(config, "data.pipeline") in STACKABLE_PIPELINES:
        identity = without(identity, MEMBER_KEYS)
    process = {key: dig(config, key) for key in PROCESS_KEYS}
    return json.dumps({"identity": identity, "process": process}, sort_keys=True, default=str)


def group_jobs(configs: Sequence[Mapping[str, Any]], *, max_members: int) -> list[list[int]]:
    """Indices of ``configs`` in groups, in the order of each group's first job.

    Jobs of equal ``group_key`` form a group; one of more than ``max_members`` jobs is
    split into the fewest groups of at most ``max_members``, as equal in size as can be
    (7 jobs, cap 4: 4 + 3).
    """
    if max_members < 1:
        raise ValueError(f"max_members must be an integer >= 1, got {max_members!r}")
    by_key: dict[str, list[int]] = {}
    for i, config in enumerate(configs):
        by_key.setdefault(group_key(config), []).append(i)
    groups: list[list[int]] = []
    for jobs in by_key.values():
        parts = math.ceil(len(jobs) / max_members)
        size, extra = divmod(len(jobs), parts)
        start = 0
        for p in range(parts):
            stop = start + size + (1 if p < extra else 0)
            groups.append(jobs[start:stop])
            start = stop
    return groups
