"""Time by depth: the one model that prices a job not yet run, for the ETA, resolve's cost
and ``make bench``.

Two rules, used by all three:

- **The line in depth** (``depth_line``): a depth not measured is read off a straight line
  through the measured ones, least squares (a ViT's blocks cost the same at every depth;
  embedding and head add a constant). From one measured depth: proportional to depth. A
  line that falls with depth or reaches zero is noise or one odd depth: the nearest
  measured depth instead.
- **The machine** (``machine_order``, ``estimate``): times are taken on the machine of the
  job that ended last (where the next jobs most likely run; ``results.machine`` tells two
  chips of one name apart). A depth it has neither measured nor can draw a line through
  (two measured depths) comes from the other machines of the same device, most ended jobs
  first: measured elsewhere rather than guessed from one point. Only where none of them can
  either, one measured depth is scaled in proportion. A CPU job is never priced at a GPU's
  times, nor the reverse.

For the ETA, ``EpochTimes.at(depth)`` gives the seconds per epoch of a job that has not
timed one yet, in order:

1. the mean epoch of this command's jobs at that depth;
2. the mean epoch of the sweep's *earlier* jobs at that depth (jobs outside this
   command, on the machine ``machine_order`` puts first: the grid before a resolve round,
   a rerun with more seeds), scaled by how much slower or faster this command runs than
   they did (the median ratio over the depths both timed; unscaled where none is shared);
3. the line in depth through the depths that 1 and 2 know;
4. where 1 and 2 know fewer than two depths: the other machines of that device
   (``elsewhere``, in ``machine_order``), each scaled to this command the same way, by
   ``estimate``'s rule, as resolve's pricing falls back;
5. the mean epoch over everything timed, for a job whose depth is unknown.

Without 2 and 3 a resolve round that adds seeds at depths 4-7, or the first command of
a depth-by-depth sweep, would price every deep job at the speed of the shallow one
that timed an epoch first (the study's round 2 ETA read 55 min for about 4 hours).

Pure arithmetic on numbers: no files, no torch, no numpy (the watcher runs it).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

Timed = Iterable[tuple[int | None, Iterable[float]]]  # (depth, its epochs' seconds) per job


def depth_line(known: Mapping[int, float]) -> Callable[[int], float]:
    """``known`` (seconds at each measured depth, at least one) extended to any depth."""
    if not known:
        raise ValueError("depth_line needs at least one measured depth")
    if len(known) == 1:
        ((at, seconds),) = known.items()
        return lambda depth: seconds * depth / at if at > 0 else seconds
    slope, intercept = statistics.linear_regression(list(known), list(known.values()))

    def at(depth: int) -> float:
        value = intercept + slope * depth
        if slope <= 0 or value <= 0:
            return known[min(known, key=lambda d: (abs(d - depth), d))]
        return value

    return at


def device(machine: str) -> str:
    """``cpu`` of ``cpu (AMD EPYC, AVX512)``: the device ``results.machine`` names first."""
    return machine.split(" (", 1)[0]


def machine_order(ended: Iterable[tuple[str | None, str | None]]) -> list[str | None]:
    """Machines to take times from, best first, given (machine, ended_at) of ended jobs: the
    machine of the job that ended last, then the other machines of its device, most ended
    jobs first (jobs that name no machine are one machine of their own). Empty: no job."""
    jobs = [(m, at or "") for m, at in ended]
    if not jobs:
        return []
    first = max(jobs, key=lambda job: job[1])[0]
    kind = None if first is None else device(first)
    counts = Counter(m for m, _ in jobs if (None if m is None else device(m)) == kind)
    return [first, *(m for m, _ in counts.most_common() if m != first)]


def estimate(sources: Sequence[Mapping[int, float]], depth: int) -> tuple[int, float] | None:
    """(index of the source used, seconds) at ``depth``, the sources in ``machine_order``:
    the first that measured the depth or can draw a line (two measured depths), else the
    first with one measured depth, in proportion; None where every source is empty."""
    for i, known in enumerate(sources):
        if depth in known:
            return i, known[depth]
        if len(known) >= 2:
            return i, depth_line(known)(depth)
    for i, known in enumerate(sources):
        if known:
            return i, depth_line(known)(depth)
    return None


def _by_depth(jobs: Timed) -> tuple[dict[int, float], list[float]]:
    """Mean seconds per epoch at each depth, and every epoch's seconds."""
    seconds: dict[int | None, list[float]] = {}
    for depth, epochs in jobs:
        seconds.setdefault(depth, []).extend(epochs)
    every = [s for values in seconds.values() for s in values]
    means = {d: statistics.fmean(s) for d, s in seconds.items() if s and d is not None}
    return means, every


def _scaled(now: Mapping[int, float], then: Mapping[int, float]) -> tuple[dict[int, float], float]:
    """``then`` scaled to this command's speed, and the factor: how much slower this command
    runs than ``then`` did, the median ratio over the depths both timed (1.0 where none is)."""
    ratios = [now[d] / then[d] for d in sorted(set(now) & set(then)) if then[d] > 0]
    factor = statistics.median(ratios) if ratios else 1.0
    return {d: s * factor for d, s in then.items()}, factor


@dataclass(frozen=True)
class EpochTimes:
    """Seconds per epoch by depth: measured now, else earlier in the sweep, else a line,
    else the device's other machines."""

    now: dict[int, float]  # this command's jobs, per depth
    earlier: dict[int, float]  # the sweep's earlier jobs, per depth, scaled to this command
    overall: float | None  # mean over every epoch timed, now or (scaled) earlier
    scale: float  # this command's epoch time / the earlier jobs' (1.0 with no shared depth)
    elsewhere: tuple[dict[int, float], ...] = ()  # other machines of the device, scaled

    @classmethod
    def build(cls, now: Timed, earlier: Timed = (), elsewhere: Iterable[Timed] = ()) -> EpochTimes:
        now_means, now_every = _by_depth(now)
        earlier_means, earlier_every = _by_depth(earlier)
        scaled, scale = _scaled(now_means, earlier_means)
        every = now_every or [s * scale for s in earlier_every]
        others = tuple(_scaled(now_means, _by_depth(jobs)[0])[0] for jobs in elsewhere)
        overall = statistics.fmean(every) if every else None
        return cls(now_means, scaled, overall, scale, others)

    def at(self, depth: int | None) -> float | None:
        """Seconds per epoch at ``depth``; None when nothing was timed at all."""
        sources = [{**self.earlier, **self.now}, *self.elsewhere]
        found = None if depth is None else estimate(sources, depth)
        return self.overall if found is None else found[1]
