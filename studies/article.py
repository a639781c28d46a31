"""The original article's claims beside this study's answer, one row per claim.

The article ran one seed per point. Its claims are data (``CLAIMS``), each naming the part
of the study that answers it: a cell (is the candidate ahead by the rule there?), a
critical depth, whether the critical depth shrinks, an accuracy lost to the higher lr, or
whether the higher lr hurts the baseline more. ``article_table`` looks each one up in the
analysed study and says whether the study agrees, differs (for a critical depth: finds
an earlier or later one) or leaves it open, and how sure it is (seeds, interval, the
exact Wilcoxon p where the cell is paired).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analysis import render as tables
from analysis.compare import UNRESOLVED, WIN, Analysis
from analysis.stability import BASELINE_MORE, WITHIN_MARGIN
from studies.findings import critical_bounds, shrinks
from studies.robustness import on_basis, rank_checks
from studies.study import Published

AHEAD, COMPARABLE = "ahead", "comparable"  # what the article says of a cell
AGREES, DIFFERS, OPEN = "agrees", "differs", "open"


@dataclass(frozen=True)
class Claim:
    """One claim of the article. ``kind``: ``cell`` (``expect`` AHEAD or COMPARABLE; on the
    ``basis`` given, default the last epoch), ``critical`` (``value``: its critical depth),
    ``shrink`` (from the lower lr to ``lr``), ``drop`` (``model`` at ``depth``: ``value``,
    the accuracies at the lower and the higher lr), ``gap`` (``expect``: a
    ``analysis.stability`` state at ``depth``)."""

    says: str
    kind: str
    sweep: str = "article_full"
    lr: float | None = None
    depth: int | None = None
    expect: str | None = None
    value: float | tuple[float, float] | None = None
    model: str | None = None
    basis: str = "final"


CLAIMS = (
    Claim("lr 0.003, depth 4: comparable, ViT slightly ahead", "cell", lr=0.003, depth=4,
          expect=COMPARABLE),
    Claim("lr 0.003, depth 5: comparable, ViTBNFFN marginally ahead", "cell", lr=0.003,
          depth=5, expect=COMPARABLE),
    Claim("lr 0.003, depth 6: ViTBNFFN clearly ahead", "cell", lr=0.003, depth=6, expect=AHEAD),
    Claim("lr 0.003, depth 7: ViTBNFFN clearly ahead", "cell", lr=0.003, depth=7, expect=AHEAD),
    Claim("lr 0.003: critical depth about 6", "critical", lr=0.003, value=6),
    Claim("lr 0.005, depth 1: comparable, ViT slightly ahead", "cell", lr=0.005, depth=1,
          expect=COMPARABLE),
    Claim("lr 0.005, depth 2: comparable", "cell", lr=0.005, depth=2, expect=COMPARABLE),
    Claim("lr 0.005, depth 3: ViTBNFFN slightly ahead (not yet clearly)", "cell", lr=0.005,
          depth=3, expect=COMPARABLE),
    Claim("lr 0.005, depth 4: ViTBNFFN clearly ahead", "cell", lr=0.005, depth=4, expect=AHEAD),
    Claim("lr 0.005: critical depth about 4", "critical", lr=0.005, value=4),
    Claim("the critical depth shrinks as the lr grows (6 -> 4)", "shrink", lr=0.005),
    Claim("depth 3, epoch 10, lr 0.003 -> 0.005: ViT about 91 % -> 78 %", "drop", depth=3,
          model="vit", value=(0.91, 0.78)),
    Claim("depth 3, epoch 10, lr 0.003 -> 0.005: ViTBNFFN about 92 % -> 90 %", "drop",
          depth=3, model="vitbnffn", value=(0.92, 0.90)),
    Claim("depth 4: the same picture (the higher lr hurts ViT more)", "gap", depth=4,
          expect=BASELINE_MORE),
    Claim("depth 2: both comparably hurt by the higher lr", "gap", depth=2,
          expect=WITHIN_MARGIN),
    Claim("warm-up, lr 0.01: DNN-BN converges faster (basis: mean accuracy over the epochs)",
          "cell", sweep="warmup", lr=0.01, depth=3, expect=AHEAD, basis="auc"),
    Claim("warm-up, lr 0.1: DNN stops training while DNN-BN trains well", "cell",
          sweep="warmup", lr=0.1, depth=3, expect=AHEAD),
)  # fmt: skip


def _row(frame: pd.DataFrame, **where: float | str) -> dict:
    at = frame
    for column, value in where.items():
        at = at[at[column] == value]
    if len(at) != 1:
        raise KeyError(f"{len(at)} rows at {where}")
    return at.iloc[0].to_dict()


def _cell(a: Analysis, claim: Claim) -> tuple[str, str]:
    if claim.basis != a.settings.basis:
        a = on_basis(a, claim.basis)
    cell = _row(a.diffs, lr=claim.lr, depth=claim.depth)  # type: ignore[arg-type]
    ranks = rank_checks(a)
    rank = ranks[(ranks["lr"] == claim.lr) & (ranks["depth"] == claim.depth)]
    p = f", Wilcoxon p {rank['wilcoxon_p'].iloc[0]:.3f}" if len(rank) else ""
    candidate, baseline = cell["candidate"], cell["baseline"]
    study = (
        f"{cell['label']}: {tables.points(cell['diff'])} points "
        f"{tables.interval(cell['ci_low'], cell['ci_high'])} ({candidate} "
        f"{tables.pct(cell['mean_a'])} %, {baseline} {tables.pct(cell['mean_b'])} %; "
        f"{cell['n_a']} seeds{p})"
    )
    if cell["state"] == UNRESOLVED:
        return study, f"{OPEN}: more seeds decide it"
    won = cell["state"] == WIN
    if claim.expect == AHEAD:
        return study, AGREES if won else f"{DIFFERS}: not a win by the rule here"
    return study, f"{DIFFERS}: a win here" if won else AGREES


def _critical(a: Analysis, claim: Claim) -> tuple[str, str]:
    row = _row(a.critical, lr=claim.lr)  # type: ignore[arg-type]
    low, high = critical_bounds(row)
    study = f"{row['critical_depth']} ({row['verdict']})"
    value = claim.value
    if high is not None and high < value:  # type: ignore[operator]
        return study, f"{DIFFERS}: an earlier critical depth"
    if low > value:  # type: ignore[operator]
        return study, f"{DIFFERS}: a later critical depth"
    return study, AGREES if low == high == value else f"{OPEN}: the range includes it"


def _shrink(a: Analysis, claim: Claim) -> tuple[str, str]:
    ordered = a.critical.sort_values("lr").to_dict("records")
    high = next(r for r in ordered if r["lr"] == claim.lr)
    low = ordered[ordered.index(high) - 1]
    answer = shrinks(critical_bounds(low), critical_bounds(high))
    study = f"{answer}: {low['critical_depth']} -> {high['critical_depth']}"
    return study, {"yes": AGREES, "no": DIFFERS}.get(answer, OPEN)


def _drop(a: Analysis, claim: Claim) -> tuple[str, str]:
    row = _row(a.stability, model=claim.model, depth=claim.depth)  # type: ignore[arg-type]
    before, after = claim.value  # type: ignore[misc]
    study = (
        f"{tables.pct(row['acc_low'])} % -> {tables.pct(row['acc_high'])} %: lost "
        f"{tables.points(row['drop'])} points {tables.interval(row['ci_low'], row['ci_high'])} "
        f"({row['n_low']} / {row['n_high']} seeds)"
    )
    said = before - after
    if row["ci_low"] <= said <= row["ci_high"]:
        return study, f"{AGREES} (the article's {said * 100:.0f} points lie in the interval)"
    side = "more" if said < row["ci_low"] else "less"
    return study, f"{DIFFERS}: the study loses {side} than the article's {said * 100:.0f} points"


def _gap(a: Analysis, claim: Claim) -> tuple[str, str]:
    row = _row(a.stability_gap, depth=claim.depth)  # type: ignore[arg-type]
    state = tables.GAP_STATES.get(row["state"], row["state"])
    study = (
        f"{state.format(candidate=row['candidate'], baseline=row['baseline'])}: "
        f"{tables.points(row['gap'])} points "
        f"{tables.interval(row['ci_low'], row['ci_high'])} ({row['n']} seeds)"
    )
    if row["state"] == claim.expect:
        return study, AGREES
    return study, f"{OPEN}: more seeds decide it" if row["state"] == UNRESOLVED else DIFFERS


ANSWERS = {"cell": _cell, "critical": _critical, "shrink": _shrink, "drop": _drop, "gap": _gap}


def article_table(study: list[Published]) -> pd.DataFrame:
    """One row per claim of ``CLAIMS``: the article, this study, and how they compare."""
    analyses = {p.name: p.analysis for p in study}
    rows = []
    for claim in CLAIMS:
        found, compared = ANSWERS[claim.kind](analyses[claim.sweep], claim)
        rows.append({"the article (one seed)": claim.says, "this study": found,
                     "compared": compared})  # fmt: skip
    return pd.DataFrame(rows)
