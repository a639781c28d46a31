"""Seconds per epoch by depth, for the ETA of jobs that have not timed an epoch yet.

A job's own timed epochs are its best estimate; the sweep status uses them first. For
a job without any, ``EpochTimes.at(depth)`` gives, in order:

1. the mean epoch of this command's jobs at that depth;
2. the mean epoch of the sweep's *earlier* jobs at that depth (jobs outside this
   command: the grid before a resolve round, a rerun with more seeds), scaled by how
   much slower or faster this command runs than they did (the median ratio over the
   depths both timed; unscaled where none is shared);
3. a line in depth, least squares through the depths that 1 and 2 know (one depth
   known: proportional to depth, since a ViT's blocks dominate its cost);
4. the mean epoch over everything timed, for a job whose depth is unknown.

Without 2 and 3 a resolve round that adds seeds at depths 4-7, or the first command of
a depth-by-depth sweep, would price every deep job at the speed of the shallow one
that timed an epoch first (the study's round 2 ETA read 55 min for about 4 hours).

Pure arithmetic on numbers: no files, no torch, no numpy (the watcher runs it).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Timed = Iterable[tuple[int | None, Iterable[float]]]  # (depth, its epochs' seconds) per job


def _by_depth(jobs: Timed) -> tuple[dict[int, float], list[float]]:
    """Mean seconds per epoch at each depth, and every epoch's seconds."""
    seconds: dict[int | None, list[float]] = {}
    for depth, epochs in jobs:
        seconds.setdefault(depth, []).extend(epochs)
    every = [s for values in seconds.values() for s in values]
    means = {d: statistics.fmean(s) for d, s in seconds.items() if s and d is not None}
    return means, every


def _line(known: Mapping[int, float], depth: int) -> float:
    """``known`` extended to ``depth``: least squares in depth (proportional from one)."""
    if len(known) == 1:
        ((at, seconds),) = known.items()
        return seconds * depth / at if at > 0 else seconds
    depths, seconds = list(known), list(known.values())
    slope, intercept = statistics.linear_regression(depths, seconds)
    value = intercept + slope * depth
    if slope <= 0 or value <= 0:  # noise or one odd depth: the nearest known depth instead
        nearest = min(known, key=lambda d: (abs(d - depth), d))
        return known[nearest]
    return value


@dataclass(frozen=True)
class EpochTimes:
    """Seconds per epoch by depth: measured now, else earlier in the sweep, else a line."""

    now: dict[int, float]  # this command's jobs, per depth
    earlier: dict[int, float]  # the sweep's earlier jobs, per depth, scaled to this command
    overall: float | None  # mean over every epoch timed, now or (scaled) earlier
    scale: float  # this command's epoch time / the earlier jobs' (1.0 with no shared depth)

    @classmethod
    def build(cls, now: Timed, earlier: Timed = ()) -> EpochTimes:
        now_means, now_every = _by_depth(now)
        earlier_means, earlier_every = _by_depth(earlier)
        shared = sorted(set(now_means) & set(earlier_means))
        ratios = [now_means[d] / earlier_means[d] for d in shared if earlier_means[d] > 0]
        scale = statistics.median(ratios) if ratios else 1.0
        scaled = {d: s * scale for d, s in earlier_means.items()}
        every = now_every or [s * scale for s in earlier_every]
        return cls(now_means, scaled, statistics.fmean(every) if every else None, scale)

    def at(self, depth: int | None) -> float | None:
        """Seconds per epoch at ``depth``; None when nothing was timed at all."""
        if depth is None:
            return self.overall
        if depth in self.now:
            return self.now[depth]
        if depth in self.earlier:
            return self.earlier[depth]
        known = {**self.earlier, **self.now}
        return _line(known, depth) if known else self.overall
