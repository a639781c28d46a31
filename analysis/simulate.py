"""The analysis checked against a known truth by simulation: ``python -m analysis.simulate``.

1. Coverage: how often the 95 % interval of a difference over n seeds covers the true
   difference, for the t intervals the analysis uses (paired, unpaired) and, for contrast,
   the percentile bootstrap it used before (seeds resampled per model).
2. Adaptive seeds: simulated studies whose true difference crosses from "BN worse" to "BN
   better" between depth 3 and 6, answered by ``resolve``'s own decision code (cells,
   verdict, plan) from 2 seeds on, against running ``max_seeds`` seeds everywhere: jobs
   spent, and how often the critical depth found is the true one.

Seed noise: ``SEED_SD`` (1 accuracy point), the standard deviation of a job's final test
accuracy over seeds at one grid point. An assumption, within the 0.5-1.5 points usual for
small image classifiers near convergence; a real probe here (ViT depth 4, lr 0.003, 4 epochs
on 10,000 training images, accuracy 54-59 %) gave 2.2 points over 3 seeds, early-training
noise that full-length runs shrink (rerun with ``--seed-sd 0.022`` to see its effect).
``SEED_CORR``: the correlation of the two models' accuracies at one seed, which the shared
data stream brings; 0 is the conservative choice (pairing then buys nothing). The coverage
of a t interval does not depend on the noise's scale.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.compare import Verdict, critical_depths, depth_differences, verdict
from analysis.intervals import paired_bounds, unpaired_bounds
from analysis.resolve import SEED, plan_seeds
from analysis.settings import Settings

SEED_SD = 0.01  # accuracy fraction (1 point): see the module docstring
SEED_CORR = 0.0  # correlation of the two models' accuracies at one seed
PAIR = ("vitbnffn", "vit")
DEPTHS = tuple(range(1, 8))


@dataclass(frozen=True)
class Noise:
    sd: float = SEED_SD
    corr: float = SEED_CORR


# --- 1. coverage -------------------------------------------------------------------------


def _samples(rng: np.random.Generator, n: int, experiments: int, noise: Noise, truth: float):
    """(experiments, n) accuracies of both models, ``truth`` apart; same seeds in a column."""
    shared = rng.normal(0, noise.sd * np.sqrt(noise.corr), (experiments, n))
    own = noise.sd * np.sqrt(1 - noise.corr)
    a = 0.95 + truth + shared + rng.normal(0, own, (experiments, n))
    b = 0.95 + shared + rng.normal(0, own, (experiments, n))
    return a, b


def t_coverage(n: int, paired: bool, experiments: int, noise: Noise = Noise(), seed=0) -> float:
    """Share of experiments whose 95 % t interval covers the true difference (1 point)."""
    rng = np.random.default_rng(seed)
    a, b = _samples(rng, n, experiments, noise if paired else Noise(noise.sd, 0.0), 0.01)
    low, high = paired_bounds(a - b, 0.95) if paired else unpaired_bounds(a, b, 0.95)
    return float(np.mean((low < 0.01) & (0.01 < high)))


def bootstrap_coverage(n: int, experiments: int, n_boot: int = 2000, seed: int = 0) -> float:
    """The same for the former percentile bootstrap (each model's seeds resampled)."""
    rng = np.random.default_rng(seed)
    a, b = _samples(rng, n, experiments, Noise(corr=0.0), 0.01)
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


def true_differences(rng: np.random.Generator) -> np.ndarray:
    """BN worse at shallow depths, better at deep ones; the crossing uniform in [3, 6]."""
    crossing = rng.uniform(3.0, 6.0)
    return 0.015 * (np.array(DEPTHS) - crossing)  # 1.5 points per layer


class Study:
    """One simulated sweep: a seed's accuracy for any (model, depth, seed) it is asked to run.

    The two models' runs of one (depth, seed) share a draw (the data stream), weighted so
    that their correlation is ``noise.corr``.
    """

    def __init__(self, rng: np.random.Generator, diffs: np.ndarray, noise: Noise) -> None:
        self.rng, self.diffs, self.noise = rng, diffs, noise
        self.rows: list[dict] = []
        self.shared: dict[tuple[int, int], float] = {}

    def run(self, model: str, depth: int, seed: int) -> None:
        mean = 0.95 + (self.diffs[DEPTHS.index(depth)] if model == PAIR[0] else 0.0)
        shared = self.shared.setdefault((depth, seed), self.rng.normal())
        corr = self.noise.corr
        draw = np.sqrt(corr) * shared + np.sqrt(1 - corr) * self.rng.normal()
        self.rows.append({"model": model, "depth": depth, "seed": seed})
        self.rows[-1]["score"] = mean + self.noise.sd * draw

    def scores(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows)
        return frame.assign(lr=0.003, batch_size=100, epoch=10, status="completed")


@dataclass
class Outcome:
    jobs: int
    found: Verdict
    truth: Verdict
    grey: bool  # the answer is off at a depth whose true difference is in (0, margin]

    @property
    def right(self) -> bool:
        return self.found.resolved and self.found.text == self.truth.text

    @property
    def wrong(self) -> bool:
        return self.found.resolved and self.found.text != self.truth.text

    @property
    def bracketed(self) -> bool:
        """Not resolved, and the truth within the bounds given."""
        high = self.found.high if self.found.high is not None else np.inf
        truth = self.truth.high if self.truth.high is not None else np.inf
        return not self.found.resolved and self.found.low <= truth <= high


def _answer(study: Study, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame, Verdict]:
    cells = depth_differences(study.scores(), PAIR, settings)
    ordered = cells.sort_values("depth")
    return cells, critical_depths(cells), verdict(list(DEPTHS), ordered["state"].tolist())


def run_study(
    rng: np.random.Generator, settings: Settings, max_seeds: int, adaptive: bool, noise: Noise
) -> Outcome:
    """One study answered by ``resolve``'s plan from 2 seeds (adaptive) or max_seeds seeds."""
    diffs = true_differences(rng)
    truth = verdict(list(DEPTHS), ["win" if d > settings.margin else "lose" for d in diffs])
    study = Study(np.random.default_rng(rng.integers(2**31)), diffs, noise)
    for depth in DEPTHS:
        for seed in range(2 if adaptive else max_seeds):
            for model in PAIR:
                study.run(model, depth, seed)
    cells, critical, found = _answer(study, settings)
    while adaptive:
        plans = plan_seeds(cells, critical, study.scores(), ["lr", "batch_size"], max_seeds)
        seeded = [p for p in plans if p.action == SEED]
        if not seeded:
            break
        for plan in seeded:
            for model in plan.models:
                study.run(model, plan.depth, plan.seed)
        cells, critical, found = _answer(study, settings)
    grey = any(0 < d <= settings.margin for d in diffs)
    return Outcome(len(study.rows), found, truth, grey and found.text != truth.text)


def resolve_study(
    studies: int, max_seeds: int = 6, noise: Noise = Noise(), level: float = 0.95, seed: int = 0
) -> dict[str, dict]:
    """Jobs and answers of resolve and of max_seeds everywhere over ``studies`` studies."""
    settings = Settings(level=level)
    out = {}
    for name, adaptive in (
        ("resolve from 2 seeds", True),
        (f"{max_seeds} seeds everywhere", False),
    ):
        rng = np.random.default_rng(seed)  # the same true differences for both strategies
        runs = [run_study(rng, settings, max_seeds, adaptive, noise) for _ in range(studies)]
        out[name] = {
            "jobs_mean": float(np.mean([o.jobs for o in runs])),
            "jobs_max": int(max(o.jobs for o in runs)),
            "right": float(np.mean([o.right for o in runs])),
            "wrong": float(np.mean([o.wrong for o in runs])),
            "wrong_grey": float(np.mean([o.wrong and o.grey for o in runs])),
            "open": float(np.mean([not o.found.resolved for o in runs])),
            "open_bracketed": float(np.mean([o.bracketed for o in runs])),
        }
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m analysis.simulate", description=__doc__)
    parser.add_argument("--experiments", type=int, default=4000, help="coverage experiments")
    parser.add_argument("--studies", type=int, default=400, help="simulated resolve studies")
    parser.add_argument("--max-seeds", type=int, default=6)
    parser.add_argument("--seed-sd", type=float, default=SEED_SD, help="accuracy fraction")
    parser.add_argument("--seed-corr", type=float, default=SEED_CORR)
    parser.add_argument("--level", type=float, default=0.95, help="of the studies' intervals")
    args = parser.parse_args(argv)
    noise = Noise(args.seed_sd, args.seed_corr)
    tic = time.perf_counter()
    print(f"seed noise: sd {noise.sd * 100:g} points per model, same-seed correlation {noise.corr}")
    print(f"\ncoverage of a nominal 95 % interval, {args.experiments} experiments each:")
    print("| seeds per model | paired t | unpaired t | percentile bootstrap (before) |")
    print("| --- | --- | --- | --- |")
    for n in (2, 3, 5):
        paired = t_coverage(n, True, args.experiments, noise, seed=n)
        unpaired = t_coverage(n, False, args.experiments, noise, seed=n)
        boot = bootstrap_coverage(n, min(args.experiments, 2000), seed=n)
        print(f"| {n} | {paired:.1%} | {unpaired:.1%} | {boot:.1%} |")
    print(
        f"\n{args.studies} simulated studies: depths 1-7, the true difference crossing from "
        "BN worse to BN better at a depth uniform in [3, 6], 1.5 points per layer; margin 1 "
        f"point; {args.level:.0%} intervals"
    )
    print(
        "| strategy | jobs (mean) | jobs (max) | right | wrong (in the grey zone) | open "
        "(truth within its bounds) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r in resolve_study(args.studies, args.max_seeds, noise, args.level).items():
        print(
            f"| {name} | {r['jobs_mean']:.1f} | {r['jobs_max']} | {r['right']:.1%} | "
            f"{r['wrong']:.1%} ({r['wrong_grey']:.1%}) | {r['open']:.1%} "
            f"({r['open_bracketed']:.1%}) |"
        )
    print(f"\n({time.perf_counter() - tic:.0f} s)")


if __name__ == "__main__":
    main()
