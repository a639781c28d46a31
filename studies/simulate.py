"""The analysis checked against a known truth by simulation: ``python -m studies.simulate``.

1. Coverage: how often the 95 % interval of a difference over n seeds covers the true
   difference, for the t intervals the analysis uses (paired, unpaired) and, for contrast,
   the percentile bootstrap it used before (seeds resampled per model).
2. Adaptive seeds: simulated studies whose true difference crosses from "BN worse" to "BN
   better" between depth 3 and 6, answered from 2 seeds on by ``resolve``'s rule (the
   report's cell states, ``resolve.settled`` and ``resolve.deciding_depths``), by the rule
   it had before (stop seeding a cell at its first win or lose) and by ``max_seeds`` seeds
   everywhere, all on the same studies and the same seed draws (a cell's k-th seed is the
   same number whoever runs it): jobs spent, rounds, and how often the critical depth found
   is the true one.
3. False wins of a seeding design (``--false-wins 3 4 5 6``,
   ``studies.seeding.false_win_rate``): how often a cell with no true difference ends a
   win when it is looked at with those seed counts, against a fixed design (``make
   publish`` prices the study's own design with it).

Seed noise: ``studies.seeding.SEED_SD`` (1 accuracy point per job; its module docstring
says where the figure comes from; ``--seed-sd 0.022`` reruns at the early-training noise of
a short probe). The study's lr 0.005 cells from depth 3 on spread far more, from runs that
fall 10-30 points below the rest, a slow mode that some seeds hit and some miss.
``--slow-mode P_CANDIDATE P_BASELINE`` adds one (``Noise.slow``), centred so that the true
differences stay the same: a stress test of the t intervals and of ``resolve``'s early
stops, whose few seeds can all miss a rare mode. The coverage of a t interval does not
depend on the noise's scale.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.compare import LOSE, WIN, cell_state, verdict
from analysis.intervals import paired_bounds, unpaired_bounds
from analysis.resolve import deciding_depths, default_stop_level, settled
from analysis.settings import Settings
from studies.seeding import SEED_CORR, SEED_SD, false_win_rate

DEPTHS = tuple(range(1, 8))


@dataclass(frozen=True)
class Noise:
    """A job's seed noise: normal (``sd``, same-seed correlation ``corr``), plus an optional
    slow mode: with chance ``slow[0]`` (candidate) or ``slow[1]`` (baseline) a job loses an
    accuracy uniform in ``drop`` (independently per job), centred so the mean is unchanged."""

    sd: float = SEED_SD
    corr: float = SEED_CORR
    slow: tuple[float, float] = (0.0, 0.0)
    drop: tuple[float, float] = (0.10, 0.30)

    def slow_term(
        self, rng: np.random.Generator, model: int, shape: tuple[int, ...]
    ) -> np.ndarray | float:
        """One model's (0: candidate, 1: baseline) slow-mode losses, minus their mean; 0
        without a slow mode (and then no draws, so the normal streams stay the same)."""
        p = self.slow[model]
        if p == 0:
            return 0.0
        loss = (rng.random(shape) < p) * rng.uniform(*self.drop, shape)
        return p * float(np.mean(self.drop)) - loss


# --- 1. coverage -------------------------------------------------------------------------


def _samples(rng: np.random.Generator, n: int, experiments: int, noise: Noise, truth: float):
    """(experiments, n) accuracies of both models, ``truth`` apart; same seeds in a column."""
    shared = rng.normal(0, noise.sd * np.sqrt(noise.corr), (experiments, n))
    own = noise.sd * np.sqrt(1 - noise.corr)
    a = 0.95 + truth + shared + rng.normal(0, own, (experiments, n))
    b = 0.95 + shared + rng.normal(0, own, (experiments, n))
    return a + noise.slow_term(rng, 0, a.shape), b + noise.slow_term(rng, 1, b.shape)


def t_coverage(n: int, paired: bool, experiments: int, noise: Noise = Noise(), seed=0) -> float:
    """Share of experiments whose 95 % t interval covers the true difference (1 point)."""
    rng = np.random.default_rng(seed)
    unpaired = Noise(noise.sd, 0.0, noise.slow, noise.drop)
    a, b = _samples(rng, n, experiments, noise if paired else unpaired, 0.01)
    low, high = paired_bounds(a - b, 0.95) if paired else unpaired_bounds(a, b, 0.95)
    return float(np.mean((low < 0.01) & (0.01 < high)))


def bootstrap_coverage(
    n: int, experiments: int, n_boot: int = 2000, seed: int = 0, noise: Noise = Noise()
) -> float:
    """The same for the former percentile bootstrap (each model's seeds resampled)."""
    rng = np.random.default_rng(seed)
    a, b = _samples(rng, n, experiments, Noise(noise.sd, 0.0, noise.slow, noise.drop), 0.01)
    hits = 0
    for start in range(0, experiments, 100):  # chunks keep the resamples in memory
        x, y = a[start : start + 100], b[start : start + 100]
        rows = np.arange(len(x))[:, None, None]
        mean_x = x[rows, rng.integers(0, n, (len(x), n_boot, n))].mean(axis=-1)
        mean_y = y[rows, rng.integers(0, n, (len(y), n_boot, n))].mean(axis=-1)
        low, high = np.quantile(mean_x - mean_y, [0.025, 0.975], axis=1)
        hits += int(np.sum((low < 0.01) & (0.01 < high)))
    return hits / experiments


# --- 2. adaptive seeds -------------------------------------------------------------------


def draw_studies(
    rng: np.random.Generator, studies: int, noise: Noise, max_seeds: int
) -> tuple[np.ndarray, np.ndarray]:
    """True differences (studies, depths): BN worse at shallow depths, better at deep ones,
    1.5 points per layer, crossing 0 at a depth uniform in [3, 6]; and each cell's per-seed
    differences candidate minus baseline (studies, depths, max_seeds), which is all a
    paired interval sees (two jobs' noise, correlated by ``noise.corr``, and their slow
    modes, if any)."""
    crossing = rng.uniform(3.0, 6.0, studies)
    truth = 0.015 * (np.array(DEPTHS) - crossing[:, None])
    spread = noise.sd * np.sqrt(2 * (1 - noise.corr))
    shape = (*truth.shape, max_seeds)
    paired = truth[..., None] + spread * rng.standard_normal(shape)
    return truth, paired + noise.slow_term(rng, 0, shape) - noise.slow_term(rng, 1, shape)


class Intervals:
    """Every cell's estimate and paired interval at ``level`` from its first n seeds."""

    def __init__(self, paired: np.ndarray, level: float) -> None:
        self.by_n = {
            n: (paired[..., :n].mean(axis=-1), *paired_bounds(paired[..., :n], level))
            for n in range(2, paired.shape[-1] + 1)
        }

    def at(self, study: int, depth_index: int, n: int) -> tuple[float, float, float]:
        """(estimate, low, high) of one cell with n seeds."""
        diff, low, high = (float(x[study, depth_index]) for x in self.by_n[n])
        return diff, low, high


@dataclass(frozen=True)
class Strategy:
    """How seeds are spent: ``max_seeds`` everywhere (not ``adaptive``), or ``resolve``'s
    rounds from 2 seeds with wins and loses settled by the ``stop_level`` interval (None: at
    once, the rule ``resolve`` had before) on at least ``min_seeds`` seeds."""

    name: str
    adaptive: bool = True
    stop_level: float | None = None
    min_seeds: int = 2


def answer(
    strategy: Strategy,
    study: int,
    report: Intervals,
    stop: Intervals | None,
    max_seeds: int,
    margin: float,
) -> tuple[list[int], int, list[str]]:
    """Seeds per depth, rounds and the cells' final states of one study under ``strategy``."""
    n = [2 if strategy.adaptive else max_seeds] * len(DEPTHS)
    rounds = 0
    while True:
        cells = [report.at(study, i, k) for i, k in enumerate(n)]
        states = [cell_state(k, k, *cell, margin)[0] for k, cell in zip(n, cells, strict=True)]
        if not strategy.adaptive:
            return n, rounds, states
        if stop is None:
            settles = [state in (WIN, LOSE) for state in states]
        else:
            short = [k < strategy.min_seeds for k in n]
            bounds = [stop.at(study, i, k)[1:] for i, k in enumerate(n)]
            settles = [
                settled(st, *b, margin, s) for st, b, s in zip(states, bounds, short, strict=True)
            ]
        todo = [d for d in deciding_depths(DEPTHS, states, settles) if n[d - 1] < max_seeds]
        if not todo:
            return n, rounds, states
        rounds += 1
        for depth in todo:
            n[depth - 1] += 1


OUTCOMES = ("jobs", "rounds", "right", "wrong", "wrong_grey", "open", "open_bracketed")


def outcome(
    n: Sequence[int], rounds: int, states: Sequence[str], truth: np.ndarray, margin: float
) -> tuple[float, ...]:
    """One study's ``OUTCOMES``: jobs, rounds, right, wrong, wrong with a win at a depth
    whose true difference is in (0, margin] (the grey zone), open, open with the truth
    within the range given."""
    found = verdict(DEPTHS, states)
    true = verdict(DEPTHS, [WIN if d > margin else LOSE for d in truth])
    wrong = found.resolved and found.text != true.text
    grey = any(s == WIN and 0 < d <= margin for s, d in zip(states, truth, strict=True))
    high = np.inf if found.high is None else found.high
    truth_high = np.inf if true.high is None else true.high
    bracketed = not found.resolved and found.low <= truth_high <= high
    right = found.resolved and not wrong
    return 2 * sum(n), rounds, right, wrong, wrong and grey, not found.resolved, bracketed


def compare_strategies(
    strategies: Sequence[Strategy],
    studies: int,
    max_seeds: int = 6,
    noise: Noise = Noise(),
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per strategy, all on the same studies and seed draws: the mean of each of
    ``OUTCOMES``, the most jobs and rounds, and ``wrong_vs_first``: the paired difference in
    wrong answers to the first strategy, with its standard error (``wrong_vs_first_se``)."""
    margin = Settings().margin
    truth, paired = draw_studies(np.random.default_rng(seed), studies, noise, max_seeds)
    report = Intervals(paired, level)
    stops = {s.stop_level: Intervals(paired, s.stop_level) for s in strategies if s.stop_level}
    rows, first_wrong = [], None
    for strategy in strategies:
        stop = stops.get(strategy.stop_level)
        per = np.array(
            [
                outcome(*answer(strategy, i, report, stop, max_seeds, margin), truth[i], margin)
                for i in range(studies)
            ],
            dtype=float,
        )
        row = dict(zip(OUTCOMES, per.mean(axis=0), strict=True))
        wrong = per[:, OUTCOMES.index("wrong")]
        first_wrong = wrong if first_wrong is None else first_wrong
        excess = wrong - first_wrong
        rows.append(
            {
                "strategy": strategy.name,
                **row,
                "jobs_max": int(per[:, 0].max()),
                "rounds_max": int(per[:, 1].max()),
                "wrong_vs_first": excess.mean(),
                "wrong_vs_first_se": excess.std(ddof=1) / np.sqrt(studies),
            }
        )
    return pd.DataFrame(rows)


def strategies(
    level: float,
    max_seeds: int,
    extra_stop_levels: Sequence[float] = (),
    min_seeds: Sequence[int] = (),
) -> list[Strategy]:
    """``max_seeds`` everywhere, resolve's rule before, resolve's rule now, and resolve's
    rule at other stop levels and with ``--min-seeds`` (the trade-off between jobs and
    wrong answers)."""
    out = [
        Strategy(f"{max_seeds} seeds everywhere", adaptive=False),
        Strategy("resolve, before: stop at the first win or lose"),
    ]
    stop = default_stop_level(level, max_seeds)
    out.append(Strategy(f"resolve, now: stop level {stop * 100:.4g} %", stop_level=stop))
    out += [
        Strategy(f"resolve, stop level {s * 100:.4g} %", stop_level=s) for s in extra_stop_levels
    ]
    out += [
        Strategy(f"resolve, now, --min-seeds {m}", stop_level=stop, min_seeds=m) for m in min_seeds
    ]
    return out


def _table(rows: pd.DataFrame) -> list[str]:
    lines = [
        "| strategy | jobs (mean / max) | rounds (mean / max) | right | wrong (grey zone) | "
        "wrong minus everywhere's (s.e.) | open (truth within its range) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows.to_dict("records"):
        lines.append(
            f"| {r['strategy']} | {r['jobs']:.1f} / {r['jobs_max']} | "
            f"{r['rounds']:.1f} / {r['rounds_max']} | {r['right']:.1%} | "
            f"{r['wrong']:.1%} ({r['wrong_grey']:.1%}) | "
            f"{r['wrong_vs_first'] * 100:+.1f} ({r['wrong_vs_first_se'] * 100:.1f}) | "
            f"{r['open']:.1%} ({r['open_bracketed']:.1%}) |"
        )
    return lines


def add_slow_drop(parser: argparse.ArgumentParser) -> None:
    """``--slow-drop LOW HIGH``: a slow job's loss (also ``studies.simulate_gap``'s)."""
    parser.add_argument(
        "--slow-drop",
        type=float,
        nargs=2,
        default=[0.10, 0.30],
        metavar=("LOW", "HIGH"),
        help="a slow job's accuracy loss, uniform in [LOW, HIGH] (accuracy fraction)",
    )


def slow_drop(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[float, float]:
    """The parsed ``--slow-drop``, refused unless 0 <= LOW <= HIGH <= 1."""
    low, high = args.slow_drop
    if not 0 <= low <= high <= 1:
        parser.error(f"--slow-drop: need 0 <= LOW <= HIGH <= 1, got {low} {high}")
    return low, high


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m studies.simulate", description=__doc__)
    parser.add_argument("--experiments", type=int, default=4000, help="coverage experiments")
    parser.add_argument("--studies", type=int, default=4000, help="simulated resolve studies")
    parser.add_argument("--max-seeds", type=int, default=6)
    parser.add_argument(
        "--seed-sd",
        type=float,
        nargs="+",
        default=[SEED_SD, SEED_SD / 2],
        help="accuracy fraction; one table of studies per value (coverage: the first)",
    )
    parser.add_argument("--seed-corr", type=float, default=SEED_CORR)
    parser.add_argument("--level", type=float, default=0.95, help="of the studies' intervals")
    parser.add_argument(
        "--stop-levels",
        type=float,
        nargs="*",
        default=[],
        help="more stop levels for resolve's rule, to trace jobs against wrong answers",
    )
    parser.add_argument(
        "--min-seeds",
        type=int,
        nargs="*",
        default=[],
        help="resolve's rule now, also with these --min-seeds",
    )
    parser.add_argument(
        "--slow-mode",
        type=float,
        nargs=2,
        default=[0.0, 0.0],
        metavar=("P_CANDIDATE", "P_BASELINE"),
        help="the chance that a job lands in a slow mode, per model (default: none)",
    )
    add_slow_drop(parser)
    parser.add_argument("--no-coverage", action="store_true", help="the studies only")
    parser.add_argument(
        "--false-wins",
        type=int,
        nargs="+",
        metavar="SEEDS",
        help="only the false-win rate (no true difference) of a design that looks at a cell "
        "with these seed counts (e.g. 3 4 5 6), against a fixed design of the last count",
    )
    args = parser.parse_args(argv)
    if args.false_wins:
        looks = sorted(set(args.false_wins))
        if looks[0] < 2:
            parser.error("--false-wins: a look needs at least 2 seeds")
        sd, corr, level = args.seed_sd[0], args.seed_corr, args.level
        stop = default_stop_level(level, looks[-1])
        rates = {
            f"fixed {looks[-1]} seeds": false_win_rate(looks[-1:], args.studies, sd, corr, level),
            "stop at the first win or lose": false_win_rate(looks, args.studies, sd, corr, level),
            f"resolve's settle rule ({stop * 100:.4g} %)": false_win_rate(
                looks, args.studies, sd, corr, level, stop
            ),
        }
        print(f"false-win rate, looks at {looks} seeds, {args.studies} cells, no true difference:")
        print("\n".join(f"  {name}: {rate:.2%}" for name, rate in rates.items()))
        return
    for p in args.slow_mode:
        if not 0 <= p < 1:
            parser.error(f"--slow-mode: each chance must be in [0, 1), got {p}")
    low, high = slow_drop(parser, args)
    slow, drop = (args.slow_mode[0], args.slow_mode[1]), (low, high)
    noise = Noise(args.seed_sd[0], args.seed_corr, slow, drop)
    slow_text = (
        f"; a slow mode: chance {slow[0]:g} (candidate) and {slow[1]:g} (baseline) per job, "
        f"losing {low * 100:g}-{high * 100:g} points"
        if any(slow)
        else ""
    )
    tic = time.perf_counter()
    if not args.no_coverage:
        print(
            f"seed noise: sd {noise.sd * 100:g} point{'' if noise.sd == 0.01 else 's'} per "
            "model, same-seed correlation "
            f"{noise.corr}{slow_text}"
        )
        print(f"\ncoverage of a nominal 95 % interval, {args.experiments} experiments each:")
        print("| seeds per model | paired t | unpaired t | percentile bootstrap (before) |")
        print("| --- | --- | --- | --- |")
        for n in (2, 3, 5):
            paired = t_coverage(n, True, args.experiments, noise, seed=n)
            unpaired = t_coverage(n, False, args.experiments, noise, seed=n)
            boot = bootstrap_coverage(n, min(args.experiments, 2000), seed=n, noise=noise)
            print(f"| {n} | {paired:.1%} | {unpaired:.1%} | {boot:.1%} |")
    for sd in args.seed_sd:
        print(
            f"\n{args.studies} simulated studies: depths 1-7, the true difference crossing "
            "from BN worse to BN better at a depth uniform in [3, 6], 1.5 points per layer; "
            f"margin 1 point; {args.level:.0%} intervals; seed noise {sd * 100:g} "
            f"point{'' if sd == 0.01 else 's'} per job (same-seed correlation "
            f"{args.seed_corr}{slow_text}); from 2 seeds, at most "
            f"{args.max_seeds}"
        )
        plan = strategies(args.level, args.max_seeds, args.stop_levels, args.min_seeds)
        rows = compare_strategies(
            plan, args.studies, args.max_seeds, Noise(sd, args.seed_corr, slow, drop), args.level
        )
        print("\n".join(_table(rows)))
    print(f"\n({time.perf_counter() - tic:.0f} s)")


if __name__ == "__main__":
    main()
