"""How the study's seeds were spent, and what that does to its error rate.

The study did not run a fixed number of seeds: each sweep's grid ran the seeds of its
config (``resolve.json``'s origin: ``trainer.seed=0,1,2``), and ``make resolve`` then added
one seed per round to the cells that could still change a critical depth. Every round is a
look at the data, and a cell that is looked at until it wins is more likely to win by
chance than one judged once. This module reads the design off the results (seeds per cell,
the grid's seeds), replays each cell's state at every look (its first k seeds, in seed
order: the order in which they were added), and prices the design with
``false_win_rate``: the share of cells with no true difference that it calls a win,
against a fixed number of seeds, by simulation.

Seed noise: ``SEED_SD`` (1 accuracy point), the standard deviation of a job's final test
accuracy over seeds at one grid point. An assumption, within the 0.5-1.5 points usual for
small image classifiers near convergence; a real probe here (ViT depth 4, lr 0.003, 4 epochs
on 10,000 training images, accuracy 54-59 %) gave 2.2 points over 3 seeds, early-training
noise that full-length runs shrink. The study itself (``results/article_full``, 10 epochs on
full MNIST, 3 seeds) bore it out at lr 0.003: 0.2-1.4 points per cell. At lr 0.005 from
depth 3 on it did not: 1.4-10.6 points, from runs that fall 10-30 points below the rest, a
slow mode that some seeds hit and some miss (``studies/simulate.py --slow-mode`` in the
repository measures what that does to ``resolve``). ``SEED_CORR``: the correlation of the
two models' accuracies at one seed, which the shared data stream brings; 0 is the
conservative choice (pairing then buys nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.compare import LOSE, UNRESOLVED, WIN, Analysis, cell_state, depth_differences
from analysis.frames import groups
from analysis.intervals import paired_bounds
from analysis.resolve import default_stop_level, settled
from analysis.settings import Settings
from studies.study import cell_name

SEED_SD = 0.01  # accuracy fraction (1 point): see the module docstring
SEED_CORR = 0.0  # correlation of the two models' accuracies at one seed
STUDIES = 20_000  # simulated cells per design: a rate's standard error is under 0.2 points


@dataclass(frozen=True)
class Design:
    """A sweep's seeding: ``grid`` seeds per cell first, then one per round up to ``most``."""

    grid: int
    fewest: int
    most: int

    @property
    def looks(self) -> list[int]:
        """The seed counts at which a cell seeded to ``most`` was looked at."""
        return list(range(self.grid, self.most + 1))


def design(a: Analysis) -> Design:
    """The grid's seeds per cell (the sweep's config) and the fewest and most any cell has."""
    seeds = [s.params.get("trainer.seed") for s in a.sweeps if s.params.get("trainer.seed")]
    counts = pd.concat([a.diffs["n_a"], a.diffs["n_b"]]).astype(int)
    grid = len(str(seeds[0]).split(",")) if seeds else int(counts.min())
    return Design(grid, int(counts.min()), int(counts.max()))


def history(a: Analysis, grid: int) -> pd.DataFrame:
    """Each cell's page label at every look (a win beyond the margin counted as a win): with
    its first k seeds per model, k from ``grid`` to all it has (one column per k; empty past
    a cell's own seeds)."""
    keys = [*a.conditions, "depth"]
    scored = a.scores[a.scores["score"].notna()]
    rank = scored.groupby([*keys, "model"], dropna=False)["seed"].rank(method="first")
    most = int(rank.max()) if len(rank) else 0
    out = a.diffs[keys].copy()
    for k in range(grid, most + 1):
        cells = depth_differences(scored[rank <= k], a.pair, a.settings)
        grown = cells[(cells["n_a"] >= k) & (cells["n_b"] >= k)]
        grown = grown.assign(label=grown["label"].where(grown["state"] != WIN, WIN))
        out[k] = out[keys].merge(grown[[*keys, "label"]], on=keys, how="left")["label"].fillna("")
    return out


def false_win_rate(
    looks: Sequence[int],
    studies: int,
    sd: float = SEED_SD,
    corr: float = SEED_CORR,
    level: float = 0.95,
    stop_level: float | None = None,
    seed: int = 0,
) -> float:
    """Share of cells with no true difference that a seeding design calls a win.

    The design looks at each cell with ``looks`` seeds per model (ascending: ``[6]`` is a
    fixed 6 seeds, ``range(3, 7)`` one seed at a time from 3 to 6) and stops seeding it once
    it is decided: at its first win or lose (``stop_level`` None), or, as ``resolve`` does,
    once ``resolve.settled`` at ``stop_level``. The cell's verdict is its state at its last
    look. Every look of an adaptive design is one more chance for noise to cross the rule,
    which is what this counts. Each model's job has seed noise ``sd``, the two correlated
    by ``corr`` at one seed.
    """
    margin = Settings().margin
    rng = np.random.default_rng(seed)
    paired = sd * np.sqrt(2 * (1 - corr)) * rng.standard_normal((studies, looks[-1]))
    final = np.full(studies, UNRESOLVED, dtype=object)
    seeding = np.ones(studies, dtype=bool)
    for n in looks:
        first = paired[:, :n]
        cells = zip(first.mean(axis=-1), *paired_bounds(first, level), strict=True)
        states = np.array([cell_state(n, n, *cell, margin)[0] for cell in cells], dtype=object)
        final[seeding] = states[seeding]
        if stop_level is None:
            decided = np.isin(states, (WIN, LOSE))
        else:
            stops = zip(states, *paired_bounds(first, stop_level), strict=True)
            decided = np.array([settled(state, low, high, margin) for state, low, high in stops])
        seeding &= ~decided
    return float(np.mean(final == WIN))


def _runs(labels: list[tuple[int, str]]) -> str:
    """``win at 3, unresolved at 4-5, win at 6``."""
    parts: list[tuple[int, int, str]] = []
    for k, label in labels:
        if parts and parts[-1][2] == label:
            parts[-1] = (parts[-1][0], k, label)
        else:
            parts.append((k, k, label))
    return ", ".join(f"{s} at {lo}" + (f"-{hi}" if hi > lo else "") for lo, hi, s in parts)


def flips(a: Analysis, grid: int) -> list[str]:
    """``lr 0.003 depth 6: win at 3, unresolved at 4-5, win at 6`` for every cell whose
    label changed between looks."""
    if a.pair is None or a.diffs.empty:
        return []
    table = history(a, grid)
    looks = [c for c in table.columns if isinstance(c, int)]
    out = []
    for key, row in groups(table, [*a.conditions, "depth"]):
        labels = [(k, row[k].iloc[0]) for k in looks if row[k].iloc[0]]
        if len({label for _, label in labels}) > 1:
            out.append(f"{cell_name(key, a.conditions)}: {_runs(labels)}")
    return out


def disclosure(a: Analysis) -> list[str]:
    """The design in words, its simulated false-win rate against a fixed design, and the
    cells whose verdict changed between looks."""
    found = design(a)
    fixed = false_win_rate([found.most], STUDIES)
    first = false_win_rate(found.looks, STUDIES)
    stop = default_stop_level(a.settings.level, found.most)
    settling = false_win_rate(found.looks, STUDIES, stop_level=stop)
    seeds = f"{found.fewest}-{found.most}" if found.fewest != found.most else f"{found.most}"
    changed = flips(a, found.grid)
    return [
        f"Design: {found.grid} seeds per cell from the grid, then `make resolve` added one seed "
        "per round to the cells that could still change a critical depth; cells now have "
        f"{seeds} seeds. A cell seeded to {found.most} was looked at with "
        f"{', '.join(map(str, found.looks))} seeds.",
        f"Simulated false-win rate (no true difference; {STUDIES:,} cells; seed noise "
        f"{SEED_SD * 100:g} point per job; `studies.seeding.false_win_rate`): a fixed "
        f"{found.most} seeds calls a win {fixed:.1%} of the time; looking at "
        f"{', '.join(map(str, found.looks))} seeds and stopping at the first win or lose, "
        f"{first:.1%}; stopping only once `resolve` settles a cell (its "
        f"{stop * 100:.4g} % interval clears the margin), {settling:.1%}. Unless every round "
        f"ran under the settle rule, take the larger, {max(first, settling):.1%}, as the "
        f"design's. The rule's one-sided level is {(1 - a.settings.level) / 2:.1%}; the margin "
        "makes a fixed design stricter than that.",
        "Cells whose label changed between looks: "
        + ("; ".join(changed) if changed else "none")
        + ".",
    ]
