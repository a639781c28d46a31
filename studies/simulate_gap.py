"""The lr gap's verdicts and ``resolve --gap``'s rule checked by simulation:
``python -m studies.simulate_gap``.

A gap (``analysis.stability``) is, per seed, the baseline's loss from the low lr to the high
minus the candidate's: four jobs' scores. The seed's data stream shifts each model's two
jobs alike and cancels in its loss, so here the four jobs are independent, each with the
seed noise ``--seed-sd`` (1 point: the per-seed gap then has sd 2 points; the study's lr
0.003 cells spread 0.2-1.4 points per job, so this is on the safe side). ``--slow-mode P``
adds the study's slow mode to the one job it hit most, the baseline at the high lr: with
chance P it loses an accuracy uniform in ``--slow-drop``, centred so the true gap stays.

For each true gap (``TRUTHS``, in points), many simulated depths are answered, on the same
seed draws, by the report's rule on ``max_seeds`` seeds everywhere and by ``resolve --gap``
(from 2 seeds, one more per round until ``resolve.gap_settled`` says settled or
``max_seeds``; then the report's ``stability.gap_state``), with and without ``min_seeds``.
A verdict is wrong when it names a side that does not lose more (the true gap is 0 or of
the other sign) or says *within the margin* of a gap at least the margin.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.intervals import paired_bounds
from analysis.resolve import default_stop_level, gap_settled
from analysis.settings import Settings
from analysis.stability import BASELINE_MORE, CANDIDATE_MORE, UNRESOLVED, WITHIN_MARGIN, gap_state
from studies.seeding import SEED_SD
from studies.simulate import add_slow_drop, slow_drop

TRUTHS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)  # true gaps, in points
ANSWERS = (BASELINE_MORE, CANDIDATE_MORE, WITHIN_MARGIN, UNRESOLVED)


def draw_gaps(
    rng: np.random.Generator,
    truth: float,
    gaps: int,
    max_seeds: int,
    seed_sd: float = SEED_SD,
    slow: float = 0.0,
    drop: tuple[float, float] = (0.10, 0.30),
) -> np.ndarray:
    """(gaps, max_seeds) per-seed gaps around ``truth`` (accuracy fraction): four
    independent jobs' noise, and the baseline's high-lr slow mode (chance ``slow``)."""
    shape = (gaps, max_seeds)
    noise = seed_sd * rng.standard_normal((4, *shape)).sum(axis=0)
    if slow == 0:
        return truth + noise
    loss = (rng.random(shape) < slow) * rng.uniform(*drop, shape)
    return truth + noise + loss - slow * float(np.mean(drop))  # the baseline loses it


def _states(bounds: tuple[np.ndarray, np.ndarray], n: int, margin: float) -> np.ndarray:
    return np.array([gap_state(n, n, lo, hi, margin) for lo, hi in zip(*bounds, strict=True)])


def answer(
    per_seed: np.ndarray,
    max_seeds: int,
    margin: float,
    level: float,
    stop_level: float | None = None,
    min_seeds: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """(seeds, states) per gap: the report's rule on ``max_seeds`` seeds (``stop_level``
    None), or ``resolve --gap``'s rounds from 2 seeds."""
    if stop_level is None:
        report = paired_bounds(per_seed[:, :max_seeds], level)
        return np.full(len(per_seed), max_seeds), _states(report, max_seeds, margin)
    seeds = np.full(len(per_seed), max_seeds)
    open_ = np.ones(len(per_seed), dtype=bool)
    for n in range(2, max_seeds):
        low, high = paired_bounds(per_seed[:, :n], stop_level)
        done = open_ & np.array(
            [gap_settled(lo, hi, margin, n < min_seeds) for lo, hi in zip(low, high, strict=True)]
        )
        seeds[done] = n
        open_ &= ~done
    states = np.empty(len(per_seed), dtype=object)
    for n in np.unique(seeds):
        at = seeds == n
        states[at] = _states(paired_bounds(per_seed[at, :n], level), int(n), margin)
    return seeds, states


def wrong(states: np.ndarray, truth: float, margin: float) -> np.ndarray:
    """Which verdicts are wrong for a true gap ``truth``."""
    return (
        ((states == BASELINE_MORE) & (truth <= 0))
        | ((states == CANDIDATE_MORE) & (truth >= 0))
        | ((states == WITHIN_MARGIN) & (abs(truth) >= margin))
    )


def compare(
    gaps: int = 4000,
    max_seeds: int = 6,
    seed_sd: float = SEED_SD,
    slow: float = 0.0,
    drop: tuple[float, float] = (0.10, 0.30),
    min_seeds: Sequence[int] = (2, 5),
    truths: Sequence[float] = TRUTHS,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per true gap and strategy: mean seeds and jobs (4 per seed), the share of
    each answer, and the share wrong."""
    settings = Settings()
    margin, level = settings.margin, settings.level
    stop = default_stop_level(level, max_seeds)
    plans = [(f"{max_seeds} seeds everywhere", None, 2)]
    plans += [(f"resolve --gap, --min-seeds {m}", stop, m) for m in min_seeds]
    rng = np.random.default_rng(seed)
    rows = []
    for truth in truths:
        per_seed = draw_gaps(rng, truth / 100, gaps, max_seeds, seed_sd, slow, drop)
        for name, stop_level, least in plans:
            seeds, states = answer(per_seed, max_seeds, margin, level, stop_level, least)
            shares = {a: float(np.mean(states == a)) for a in ANSWERS}
            rows.append(
                {
                    "truth": truth,
                    "strategy": name,
                    "seeds": float(seeds.mean()),
                    "jobs": float(4 * seeds.mean()),
                    **shares,
                    "wrong": float(np.mean(wrong(states, truth / 100, margin))),
                }
            )
    return pd.DataFrame(rows)


def _table(rows: pd.DataFrame) -> list[str]:
    lines = [
        "| true gap (points) | strategy | seeds (mean) | baseline loses more | within the margin "
        "| unresolved | candidate loses more | wrong |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows.to_dict("records"):
        lines.append(
            f"| {r['truth']:g} | {r['strategy']} | {r['seeds']:.2f} | {r[BASELINE_MORE]:.1%} | "
            f"{r[WITHIN_MARGIN]:.1%} | {r[UNRESOLVED]:.1%} | {r[CANDIDATE_MORE]:.1%} | "
            f"{r['wrong']:.1%} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m studies.simulate_gap", description=__doc__)
    parser.add_argument("--gaps", type=int, default=4000, help="simulated depths per true gap")
    parser.add_argument("--max-seeds", type=int, default=6)
    parser.add_argument("--seed-sd", type=float, default=SEED_SD, help="per job (fraction)")
    parser.add_argument(
        "--min-seeds", type=int, nargs="+", default=[2, 5], help="one resolve row per value"
    )
    parser.add_argument(
        "--slow-mode",
        type=float,
        default=0.0,
        metavar="P",
        help="the chance that the baseline's high-lr job lands in a slow mode (default: none)",
    )
    add_slow_drop(parser)
    args = parser.parse_args(argv)
    if not 0 <= args.slow_mode < 1:
        parser.error(f"--slow-mode: the chance must be in [0, 1), got {args.slow_mode}")
    drop = slow_drop(parser, args)
    for m in args.min_seeds:
        if not 2 <= m <= args.max_seeds:
            parser.error(f"--min-seeds: each must be in [2, --max-seeds], got {m}")
    tic = time.perf_counter()
    rows = compare(args.gaps, args.max_seeds, args.seed_sd, args.slow_mode, drop, args.min_seeds)
    slow = (
        f"; the baseline's high-lr job slow with chance {args.slow_mode:g}, losing "
        f"{drop[0] * 100:g}-{drop[1] * 100:g} points"
        if args.slow_mode
        else ""
    )
    print(
        f"{args.gaps} simulated depths per true gap; seed noise {args.seed_sd * 100:g} points "
        f"per job (four jobs a seed){slow}; margin 1 point, 95 % intervals; at most "
        f"{args.max_seeds} seeds"
    )
    print("\n".join(_table(rows)))
    print(f"\n({time.perf_counter() - tic:.0f} s)")


if __name__ == "__main__":
    main()
