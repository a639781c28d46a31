"""Beside each cell's t interval (``analysis.compare``), three checks a reviewer asks for:

- **ranks**: with 5-6 seeds a t interval leans on normal differences (the Shapiro-Wilk p
  of the paired differences says where that is doubtful). Per paired cell, the
  sign count (positive paired differences of n), the exact two-sided Wilcoxon signed-rank p
  and the Hodges-Lehmann median of the differences (the median of their Walsh averages)
  assume only symmetry. The rank analogue of the rule wins where p < 1 - level with the
  median above the margin; where it and the t rule disagree the page says so. At n seeds
  the smallest exact p is 2 / 2**n: 0.031 at 6 seeds, 0.062 at 5 (no rank win possible).
- **multiplicity**: the critical depth is a fixed-sequence (intersection-union) test and
  needs no correction, but a page prints one interval per cell; read as separate claims,
  ``bonferroni`` widens each to level 1 - (1 - level) / m over the m cells with an interval
  and names the cells whose interval still excludes 0.
- **steadier basis**: the last epoch of a run swings by several points between epochs;
  ``analysis.settings``' ``auc`` basis (mean accuracy over the epochs) is steadier, and
  ``on_basis`` reruns the comparison on it.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations_with_replacement

import numpy as np
import pandas as pd
from scipy import stats

from analysis import render as tables
from analysis.compare import WIN, Analysis, analyze, depth_differences
from analysis.frames import groups
from studies.study import cell_name

RANK_COLUMNS = ("depth", "n", "positive", "wilcoxon_p", "hodges_lehmann", "shapiro_p")
RANK_COLUMNS += ("t_win", "rank_win")


def paired_differences(a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray | None:
    """Candidate minus baseline per seed, in seed order, where both models ran the same
    distinct seeds (frames with ``seed`` and ``score``); else None (not paired)."""
    if not a["seed"].is_unique or sorted(a["seed"]) != sorted(b["seed"]):
        return None
    x, y = a.set_index("seed")["score"], b.set_index("seed")["score"]
    return (x - y.reindex(x.index)).sort_index().to_numpy(float)


def hodges_lehmann(d: np.ndarray) -> float:
    """The median of the Walsh averages (d_i + d_j) / 2, i <= j: the one-sample
    Hodges-Lehmann estimate that goes with the signed-rank test."""
    return float(np.median([(x + y) / 2 for x, y in combinations_with_replacement(d, 2)]))


def wilcoxon_p(d: np.ndarray) -> float:
    """Two-sided signed-rank p: exact where the differences have no zeros or ties (always so
    for accuracies on 10,000 test images, barring equal runs), else the normal approximation."""
    if len(d) < 2 or not np.any(d):
        return float("nan")
    exact = np.all(d != 0) and len(np.unique(np.abs(d))) == len(d)
    return float(stats.wilcoxon(d, method="exact" if exact else "approx").pvalue)


def rank_checks(a: Analysis) -> pd.DataFrame:
    """One row per paired cell of ``a.diffs``: n, positive differences, Wilcoxon p,
    Hodges-Lehmann median, and whether the t rule and its rank analogue win."""
    if a.pair is None or a.diffs.empty:
        return pd.DataFrame(columns=[*a.conditions, *RANK_COLUMNS])
    candidate, baseline = a.pair
    alpha = 1 - a.settings.level
    states = a.diffs.set_index([*a.conditions, "depth"])["state"]
    scored = a.scores[a.scores["score"].notna()]
    rows = []
    for key, group in groups(scored, [*a.conditions, "depth"]):
        d = paired_differences(
            group[group["model"] == candidate], group[group["model"] == baseline]
        )
        if d is None or len(d) < 2:
            continue
        p, hl = wilcoxon_p(d), hodges_lehmann(d)
        rows.append(
            {
                **dict(zip([*a.conditions, "depth"], key, strict=True)),
                "n": len(d),
                "positive": int((d > 0).sum()),
                "wilcoxon_p": p,
                "hodges_lehmann": hl,
                "shapiro_p": float(stats.shapiro(d).pvalue) if len(d) >= 3 else float("nan"),
                "t_win": states.get(key) == WIN,
                "rank_win": bool(p < alpha and hl > a.settings.margin),
            }
        )
    return pd.DataFrame(rows, columns=[*a.conditions, *RANK_COLUMNS])


def bonferroni(a: Analysis) -> tuple[pd.DataFrame, int, float]:
    """``a.diffs`` with each interval at the Bonferroni level over the m cells that have an
    interval: (cells, m, that level)."""
    m = int(a.diffs["ci_low"].notna().sum()) if not a.diffs.empty else 0
    if a.pair is None or m == 0:
        return pd.DataFrame(), m, float("nan")
    level = 1 - (1 - a.settings.level) / m
    return depth_differences(a.scores, a.pair, replace(a.settings, level=level)), m, level


def on_basis(a: Analysis, basis: str) -> Analysis:
    """The same jobs compared on another ``analysis.settings`` basis (``auc``)."""
    return analyze(a.records, a.stats, replace(a.settings, basis=basis), a.sweeps)


# --- on the page -------------------------------------------------------------------------


def _cells(a: Analysis) -> pd.DataFrame:
    return a.diffs.set_index([*a.conditions, "depth"])


def _shown(diff: float, low: float, high: float) -> str:
    return f"{tables.points(diff)} {tables.interval(low, high)}".strip()


def cross_check_table(a: Analysis, steady: Analysis) -> pd.DataFrame:
    """Per cell: the t difference and label, the rank cross-check, the Bonferroni interval,
    and the label on the steadier basis (``steady``: ``on_basis(a, "auc")``)."""
    ranks = rank_checks(a).set_index([*a.conditions, "depth"])
    adjusted, _, level = bonferroni(a)
    adjusted, cells, other = adjusted.set_index([*a.conditions, "depth"]), _cells(a), _cells(steady)
    basis, rows = steady.settings.basis, []
    for key, cell in cells.iterrows():
        rank = ranks.loc[key] if key in ranks.index else None
        row = {c: tables.plain(v) for c, v in zip([*a.conditions, "depth"], key, strict=True)}
        row |= {
            "t: difference [interval]": _shown(cell["diff"], cell["ci_low"], cell["ci_high"]),
            "t: state": cell["label"],
            "positive pairs": "" if rank is None else f"{rank['positive']} of {rank['n']}",
            "Wilcoxon p (exact)": "" if rank is None else f"{rank['wilcoxon_p']:.3f}",
            "Hodges-Lehmann (points)": ""
            if rank is None
            else tables.points(rank["hodges_lehmann"]),
            "rank: state": "" if rank is None else (WIN if rank["rank_win"] else "no win"),
            "Shapiro-Wilk p": "" if rank is None else f"{rank['shapiro_p']:.3f}",
            f"Bonferroni {level * 100:.2f} % interval": tables.interval(
                adjusted.loc[key, "ci_low"], adjusted.loc[key, "ci_high"]
            ),
            f"{basis}: difference [interval]": _shown(
                *other.loc[key, ["diff", "ci_low", "ci_high"]]
            ),
            f"{basis}: state": other.loc[key, "label"],
        }
        rows.append(row)
    return pd.DataFrame(rows)


def _where(keys: list[tuple], conditions: list[str]) -> str:
    """``lr 0.003 depth 6, lr 0.005 depth 6``, or ``none``."""
    return ", ".join(cell_name(key, conditions) for key in keys) or "none"


def cross_check_notes(a: Analysis, steady: Analysis) -> list[str]:
    """What the cross-check table says, in sentences with the cells they name."""
    ranks = rank_checks(a)
    keys = [*a.conditions, "depth"]
    split = ranks[ranks["t_win"] != ranks["rank_win"]]
    disagree = [tuple(k) for k in split[keys].itertuples(index=False)]
    odd = ranks[ranks["shapiro_p"] < 1 - a.settings.level]
    skewed = [tuple(k) for k in odd[keys].itertuples(index=False)]
    smallest = ", ".join(
        f"{2 / 2**n:.3f} at {n} seeds" for n in sorted(ranks["n"].unique(), reverse=True)
    )
    adjusted, m, level = bonferroni(a)
    clear = adjusted[(adjusted["ci_low"] > 0) | (adjusted["ci_high"] < 0)]
    excludes = [tuple(k) for k in clear[keys].itertuples(index=False)]
    depths = "; ".join(
        f"{_where([(*k, '')], a.conditions).removesuffix(' depth ')}: {final} on the last "
        f"epoch, {other} on {steady.settings.basis}"
        for k, final, other in zip(
            a.critical[a.conditions].itertuples(index=False),
            a.critical["critical_depth"],
            steady.critical["critical_depth"],
            strict=True,
        )
    )
    margin = a.settings.margin
    return [
        f"Ranks: the rank analogue of the rule wins where the exact two-sided Wilcoxon "
        f"signed-rank p is below {1 - a.settings.level:g} and the Hodges-Lehmann median is "
        f"above the margin ({tables.in_points(margin)}). The smallest p the test can reach is "
        f"{smallest}. The t rule and the rank rule disagree at: {_where(disagree, a.conditions)}. "
        f"The paired differences look other than normal (Shapiro-Wilk p below "
        f"{1 - a.settings.level:g}) at: {_where(skewed, a.conditions)}.",
        f"Multiplicity: the critical depth is a fixed-sequence test (each depth tested only "
        f"while every larger one wins) and needs no correction. The {m} per-cell intervals are "
        f"another matter: read as {m} separate claims, each needs the Bonferroni level "
        f"{level * 100:.2f} %, and then the cells whose interval still excludes 0 are: "
        f"{_where(excludes, a.conditions)}.",
        f"Steadier basis: {steady.settings.describe()}; it averages out the last epoch's "
        f"swings, and it also credits faster training. Critical depth: {depths}.",
    ]
