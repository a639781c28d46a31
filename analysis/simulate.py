"""The analysis checked against a known truth by simulation: ``python -m analysis.simulate``.

1. Coverage: how often the 95 % interval of a difference over n seeds covers the true
   difference, for the t intervals the analysis uses (paired, unpaired) and, for contrast,
   the percentile bootstrap it used before (seeds resampled per model).
2. Adaptive seeds: simulated studies whose true difference crosses from "BN worse" to "BN
   better" between depth 3 and 6, answered by ``resolve``'s own decision code (cells,
   verdict, plan) from 2 seeds on, against running ``max_seeds`` seeds everywhere: jobs
   spent, and how often the critical depth found is the true one.

Seed noise: ``SEED_SD``, the spread (sample standard deviation) of final test accuracy
over seeds at one grid point of a real sweep, pooled over both models (see the README,
"Reading the answer"); same-seed runs of the two models share the data stream, which
``SEED_CORR`` correlates.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.compare import critical_depths, depth_differences, verdict
from analysis.intervals import paired_bounds, unpaired_bounds
from analysis.resolve import SEED, plan_seeds
from analysis.settings import Settings

SEED_SD = 0.01  # accuracy fraction (1 point): see the module docstring
SEED_CORR = 0.0  # correlation of the two models' accuracies at one seed (0: no help from pairs)
PAIR = ("vitbnffn", "vit")
DEPTHS = tuple(range(1, 8))


# --- 1. coverage -------------------------------------------------------------------------


def _samples(rng: np.random.Generator, n: int, experiments: int, truth: float, corr: float):
    shared = rng.normal(0, SEED_SD * np.sqrt(corr), (experiments, n))
    own = SEED_SD * np.sqrt(1 - corr)
    a = 0.95 + truth + shared + rng.normal(0, own, (experiments, n))
    b = 0.95 + shared + rng.normal(0, own, (experiments, n))
    return a, b


def t_coverage(n: int, paired: bool, experiments: int, seed: int = 0) -> float:
    """Share of experiments whose 95 % t interval covers the true difference."""
    rng = np.random.default_rng(seed)
    a, b = _samples(rng, n, experiments, 0.01, SEED_CORR if paired else 0.0)
    low, high = paired_bounds(a - b, 0.95) if paired else unpaired_bounds(a, b, 0.95)
    return float(np.mean((low < 0.01) & (0.01 < high)))


def bootstrap_coverage(n: int, experiments: int, n_boot: int = 2000, seed: int = 0) -> float:
    """The same for the former percentile bootstrap (each model's seeds resampled)."""
    rng = np.random.default_rng(seed)
    a, b = _samples(rng, n, experiments, 0.01, 0.0)
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


@dataclass
class Outcome:
    jobs: int
    answer: str  # the critical depth's text, "" when not resolved
    truth: str


def true_differences(rng: np.random.Generator) -> np.ndarray:
    """BN worse at shallow depths, better at deep ones; the crossing uniform in [3, 6]."""
    crossing = rng.uniform(3.0, 6.0)
    return 0.015 * (np.array(DEPTHS) - crossing)  # 1.5 points per layer


class Study:
    """One simulated sweep: a seed's accuracy for any (model, depth, seed) it is asked to run.

    The two models' runs of one (depth, seed) share a draw (the data stream), weighted so
    that their correlation is ``SEED_CORR``.
    """

    def __init__(self, rng: np.random.Generator, diffs: np.ndarray) -> None:
        self.rng, self.diffs = rng, diffs
        self.rows: list[dict] = []
        self.shared: dict[tuple[int, int], float] = {}

    def run(self, model: str, depth: int, seed: int) -> None:
        mean = 0.95 + (self.diffs[DEPTHS.index(depth)] if model == PAIR[0] else 0.0)
        shared = self.shared.setdefault((depth, seed), self.rng.normal())
        noise = np.sqrt(SEED_CORR) * shared + np.sqrt(1 - SEED_CORR) * self.rng.normal()
        self.rows.append({"model": model, "depth": depth, "seed": seed})
        self.rows[-1]["score"] = mean + SEED_SD * noise

    def scores(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows)
        return frame.assign(lr=0.003, batch_size=100, epoch=10, status="completed")


def _answer(study: Study, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    scores = study.scores()
    diffs = depth_differences(scores, PAIR, settings)
    critical = critical_depths(diffs)
    resolved = not critical["open_depths"].iloc[0]
    return diffs, critical, critical["critical_depth"].iloc[0] if resolved else ""


def run_study(rng: np.random.Generator, settings: Settings, max_seeds: int, adaptive: bool):
    """One study answered by ``resolve`` from 2 seeds (adaptive) or with max_seeds seeds."""
    diffs = true_differences(rng)
    states = ["win" if d > settings.margin else "lose" for d in diffs]
    truth = verdict(list(DEPTHS), states).text
    study = Study(np.random.default_rng(rng.integers(2**31)), diffs)
    for depth in DEPTHS:
        for seed in range(2 if adaptive else max_seeds):
            for model in PAIR:
                study.run(model, depth, seed)
    cells, critical, answer = _answer(study, settings)
    while adaptive:
        plans = plan_seeds(cells, critical, study.scores(), ["lr", "batch_size"], max_seeds)
        seeded = [p for p in plans if p.action == SEED]
        if not seeded:
            break
        for plan in seeded:
            for model in plan.models:
                study.run(model, plan.depth, plan.seed)
        cells, critical, answer = _answer(study, settings)
    return Outcome(len(study.rows), answer, truth)


def resolve_study(studies: int, max_seeds: int = 6, seed: int = 0) -> dict[str, dict]:
    """Jobs and accuracy of resolve and of max_seeds everywhere over ``studies`` studies."""
    settings = Settings()
    out = {}
    for name, adaptive in (("resolve", True), (f"{max_seeds} seeds everywhere", False)):
        rng = np.random.default_rng(seed)  # the same true differences for both strategies
        outcomes = [run_study(rng, settings, max_seeds, adaptive) for _ in range(studies)]
        out[name] = {
            "jobs_mean": float(np.mean([o.jobs for o in outcomes])),
            "jobs_max": int(max(o.jobs for o in outcomes)),
            "right": float(np.mean([o.answer == o.truth for o in outcomes])),
            "wrong": float(np.mean([o.answer not in ("", o.truth) for o in outcomes])),
            "unresolved": float(np.mean([o.answer == "" for o in outcomes])),
        }
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analysis.simulate", description=__doc__)
    parser.add_argument("--experiments", type=int, default=4000, help="coverage experiments")
    parser.add_argument("--studies", type=int, default=400, help="simulated resolve studies")
    parser.add_argument("--max-seeds", type=int, default=6)
    args = parser.parse_args(argv)
    tic = time.perf_counter()
    print(f"seed noise: sd {SEED_SD * 100:g} points per model, same-seed correlation {SEED_CORR}")
    print(f"\ncoverage of a nominal 95 % interval, {args.experiments} experiments each:")
    print("| seeds per model | paired t | unpaired t | percentile bootstrap (before) |")
    print("| --- | --- | --- | --- |")
    for n in (2, 3, 5):
        paired = t_coverage(n, True, args.experiments, seed=n)
        unpaired = t_coverage(n, False, args.experiments, seed=n)
        boot = bootstrap_coverage(n, min(args.experiments, 2000), seed=n)
        print(f"| {n} | {paired:.1%} | {unpaired:.1%} | {boot:.1%} |")
    print(f"\n{args.studies} simulated studies (depths 1-7, crossing in [3, 6], margin 1 point):")
    print("| strategy | jobs (mean) | jobs (max) | right | wrong | unresolved |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r in resolve_study(args.studies, args.max_seeds).items():
        print(
            f"| {name} | {r['jobs_mean']:.1f} | {r['jobs_max']} | {r['right']:.1%} | "
            f"{r['wrong']:.1%} | {r['unresolved']:.1%} |"
        )
    print(f"\n({time.perf_counter() - tic:.0f} s)")


if __name__ == "__main__":
    main()
