"""What a comparison is made of: the model pair, the metric, the basis, the margin, the level."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass, fields

from analysis.records import AnalysisError

METRICS = ("test_acc", "test_acc_clean")
BASES = ("final", "auc")
DIVERGED = ("chance", "drop")
# Pairs tried in order when none is given: (candidate, baseline).
DEFAULT_PAIRS = (("vitbnffn", "vit"), ("dnnbn", "dnn"), ("vitbn", "vit"))


@dataclass(frozen=True)
class Settings:
    """How to compare: ``models`` is (candidate, baseline); ``None`` picks the first known pair.

    ``metric``: augmented (test_acc) or clean (test_acc_clean) test accuracy.
    ``basis``: ``final`` = accuracy at ``epoch`` (default: each job's last), ``auc`` = mean
    accuracy over epochs 1..``epoch`` (area under the accuracy-by-epoch curve per epoch).
    ``margin``: the difference to exceed, in accuracy fraction units (0.01 = 1 point).
    ``level``: of the t intervals (paired by seed, else pooled or Welch; ``analysis.intervals``).
    ``diverged``: ``chance`` scores a diverged job at 1/num_classes from its divergence on,
    ``drop`` leaves it out.
    ``spread``: a cell's seeds are *wide* when their standard deviation exceeds this many
    times the sweep's typical one (``analysis.spread``).
    """

    models: tuple[str, str] | None = None
    metric: str = "test_acc"
    basis: str = "final"
    epoch: int | None = None
    margin: float = 0.01
    level: float = 0.95
    diverged: str = "chance"
    spread: float = 3.0

    def __post_init__(self) -> None:
        checks = [
            (self.metric in METRICS, f"metric must be one of {', '.join(METRICS)}"),
            (self.basis in BASES, f"basis must be one of {', '.join(BASES)}"),
            (self.diverged in DIVERGED, f"diverged must be one of {', '.join(DIVERGED)}"),
            (self.epoch is None or self.epoch >= 1, "epoch must be >= 1"),
            (self.margin >= 0, "margin must be >= 0"),
            (0 < self.level < 1, "level must be in (0, 1)"),
            (self.spread > 1, "spread must be > 1 (times the typical seed sd)"),
            (self.models is None or len(set(self.models)) == 2, "models: give two different"),
        ]
        for ok, message in checks:
            if not ok:
                raise AnalysisError(message)

    def pair(self, available: Iterable[str]) -> tuple[str, str] | None:
        """The (candidate, baseline) to compare among ``available`` models, or None."""
        have = set(available)
        if self.models is not None:
            missing = [m for m in self.models if m not in have]
            if missing:
                raise AnalysisError(
                    f"model {missing[0]!r} not in the results (have: {', '.join(sorted(have))})"
                )
            return self.models
        return next((p for p in DEFAULT_PAIRS if set(p) <= have), None)

    def describe(self) -> str:
        what = "augmented" if self.metric == "test_acc" else "clean"
        at = f"epoch {self.epoch}" if self.epoch else "the last epoch"
        basis = f"accuracy at {at}" if self.basis == "final" else f"mean accuracy up to {at}"
        return (
            f"{what} test {basis}; margin {self.margin * 100:g} point"
            f"{'' if self.margin == 0.01 else 's'}; "
            f"{self.level:.0%} t intervals over seeds (paired by seed, else pooled or Welch); "
            f"diverged jobs: {self.diverged}"
        )


def add_options(sub: argparse.ArgumentParser) -> None:
    """The comparison options, once for every subcommand that compares (report, critical,
    resolve, dashboard): each is a ``Settings`` field with its default."""
    pairs = ", else ".join(" ".join(pair) for pair in DEFAULT_PAIRS)
    sub.add_argument(
        "--models",
        nargs=2,
        metavar=("CANDIDATE", "BASELINE"),
        help=f"the pair to compare (default: {pairs})",
    )
    sub.add_argument("--metric", choices=METRICS, default=Settings.metric)
    sub.add_argument(
        "--basis",
        choices=BASES,
        default=Settings.basis,
        help="final: accuracy at the epoch; "
        "auc: mean accuracy over epochs 1..epoch (convergence speed)",
    )
    sub.add_argument("--epoch", type=int, help="epoch to compare at (default: the last)")
    sub.add_argument(
        "--margin",
        type=float,
        default=Settings.margin,
        help="in accuracy fraction (0.01 = 1 point)",
    )
    sub.add_argument("--level", type=float, default=Settings.level, help="t interval level")
    sub.add_argument(
        "--diverged",
        choices=DIVERGED,
        default=Settings.diverged,
        help="chance: a diverged job scores 1/num_classes from then on; drop: leave it out",
    )
    sub.add_argument(
        "--spread",
        type=float,
        default=Settings.spread,
        help="a cell's seeds are wide when their sd exceeds this many times the sweep's "
        "typical (median) one",
    )


def from_args(args: argparse.Namespace) -> Settings:
    """The ``Settings`` that ``add_options``' options ask for (checked: ``AnalysisError``)."""
    given = {field.name: getattr(args, field.name) for field in fields(Settings)}
    return Settings(**{**given, "models": tuple(args.models) if args.models else None})
