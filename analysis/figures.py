"""The report's seaborn figures, each saved as PNG (150 dpi) and SVG."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from analysis.frames import condition_label  # noqa: E402
from analysis.settings import Settings  # noqa: E402

SEED_BAND = ("pi", 100)  # the band spans all seeds (min to max)
METRIC_LABELS = {"test_acc": "test accuracy (augmented)", "test_acc_clean": "test accuracy (clean)"}
SHORT_LABELS = {"test_acc": "test acc. (augm.)", "test_acc_clean": "test acc. (clean)"}


@dataclass
class Figure:
    """A saved figure: ``name`` is the file stem under the figures dir."""

    name: str
    title: str
    caption: str
    png: Path
    svg: Path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", text).strip("_")


def _save(fig: plt.Figure, out: Path, name: str, title: str, caption: str) -> Figure:
    out.mkdir(parents=True, exist_ok=True)
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    fig.savefig(png, dpi=150, bbox_inches="tight")
    fig.savefig(svg, bbox_inches="tight")
    plt.close(fig)
    return Figure(name, title, caption, png, svg)


def _integer_epochs(grid: sns.FacetGrid) -> None:
    for ax in grid.axes.flat:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _palette(models: list[str]) -> dict[str, tuple]:
    return dict(zip(sorted(models), sns.color_palette("colorblind", len(models)), strict=True))


def labels(frame: pd.DataFrame, conditions: list[str], always: tuple[str, ...] = ()) -> pd.Series:
    """Per row, the label of its values of the ``conditions`` that vary (plus ``always``)."""
    shown = [c for c in conditions if c in always or frame[c].nunique(dropna=False) > 1]
    if not shown:
        return pd.Series("all", index=frame.index)
    return frame[shown].apply(lambda r: condition_label(r.to_dict()), axis=1)


def accuracy_curves(
    tidy: pd.DataFrame, conditions: list[str], settings: Settings, out: Path
) -> list[Figure]:
    """Accuracy by epoch faceted by depth, model as hue, seeds as a band; one per condition."""
    figures = []
    palette = _palette(tidy["model"].unique().tolist())
    tidy = tidy.assign(_label=labels(tidy, conditions, always=("lr",)))
    for label, data in tidy.groupby("_label", sort=True):
        depths = sorted(data["depth"].unique())
        grid = sns.relplot(
            data=data,
            x="epoch",
            y=settings.metric,
            hue="model",
            col="depth",
            col_wrap=min(len(depths), 4),
            kind="line",
            errorbar=SEED_BAND,
            palette=palette,
            marker="o",
            height=2.6,
            aspect=1.15,
        )
        grid.set_axis_labels("epoch", METRIC_LABELS[settings.metric])
        _integer_epochs(grid)
        grid.figure.suptitle(f"Accuracy by epoch ({label})", y=1.03)
        title = f"Accuracy by epoch, {label}"
        caption = "Mean over seeds; the band spans all seeds (min to max). One panel per depth."
        figures.append(_save(grid.figure, out, f"curves_{_slug(label)}", title, caption))
    return figures


def lr_comparison(
    tidy: pd.DataFrame, conditions: list[str], settings: Settings, out: Path
) -> list[Figure]:
    """Accuracy by epoch per learning rate, faceted by model (rows) and depth (columns)."""
    if tidy["lr"].nunique() < 2:
        return []
    others = [c for c in conditions if c != "lr"]
    tidy = tidy.assign(_label=labels(tidy, others), learning_rate=tidy["lr"].map("{:g}".format))
    figures = []
    for label, data in tidy.groupby("_label", sort=True):
        grid = sns.relplot(
            data=data,
            x="epoch",
            y=settings.metric,
            hue="learning_rate",
            row="model",
            col="depth",
            kind="line",
            errorbar=SEED_BAND,
            palette="flare",
            marker="o",
            height=2.2,
            aspect=1.1,
            facet_kws={"margin_titles": True},
        )
        grid.set_axis_labels("epoch", SHORT_LABELS[settings.metric])
        _integer_epochs(grid)
        grid.figure.suptitle(f"Learning rates compared ({label})", y=1.02)
        caption = "Mean over seeds; the band spans all seeds (min to max)."
        name = f"lr_comparison_{_slug(label)}"
        figures.append(_save(grid.figure, out, name, f"Learning rates compared, {label}", caption))
    return figures


def _pair_title(diffs: pd.DataFrame) -> str:
    return f"{diffs['candidate'].iloc[0]} − {diffs['baseline'].iloc[0]}"


def _won_from(critical: pd.DataFrame, label: str) -> int | None:
    """The swept depth the critical depth of ``label`` was found at; None unless resolved."""
    row = critical[critical["_label"] == label]
    if row.empty or row["open_depths"].iloc[0] or pd.isna(row["critical_depth_high"].iloc[0]):
        return None
    if row["verdict"].iloc[0] == "not enough data":
        return None
    return int(row["critical_depth_high"].iloc[0])


def diff_heatmap(
    diffs: pd.DataFrame, critical: pd.DataFrame, conditions: list[str], out: Path
) -> list[Figure]:
    """Depth x learning rate (x other condition) heatmap of the difference, critical depth boxed."""
    if diffs.empty or diffs["diff"].notna().sum() == 0:
        return []
    diffs = diffs.assign(_label=labels(diffs, conditions, always=("lr",)))
    critical = critical.assign(_label=labels(critical, conditions, always=("lr",)))
    points = diffs.pivot_table(index="depth", columns="_label", values="diff", dropna=False) * 100
    states = diffs.pivot_table(index="depth", columns="_label", values="state", aggfunc="first")
    states = states.reindex_like(points)
    annot = points.map(lambda v: "" if np.isnan(v) else f"{v:+.1f}")
    annot = annot.where(states != "win", annot + "*").where(states != "unresolved", annot + "?")
    width = 1.6 + 1.3 * len(points.columns)
    fig, ax = plt.subplots(figsize=(max(width, 4.5), 0.55 * len(points) + 1.8))
    bound = max(float(np.nanmax(np.abs(points.to_numpy()))), 1e-9)
    with warnings.catch_warnings():  # seaborn's own use of a deprecated colormap call
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        sns.heatmap(
            points,
            annot=annot,
            fmt="",
            cmap="RdBu",
            center=0,
            vmin=-bound,
            vmax=bound,
            linewidths=0.5,
            cbar_kws={"label": "difference (points)"},
            ax=ax,
        )
    for col, label in enumerate(points.columns):
        depth = _won_from(critical, label)
        if depth is None:
            continue
        row = list(points.index).index(depth)
        height = len(points.index) - row
        ax.add_patch(Rectangle((col, row), 1, height, fill=False, edgecolor="black", lw=2.5))
    ax.set_xlabel("")
    ax.set_ylabel("depth")
    title = f"Accuracy difference {_pair_title(diffs)} (points)"
    ax.set_title(title)
    caption = (
        "Mean difference over seeds in percentage points; * marks a won depth (above the "
        "margin, interval above 0), ? an unresolved one (more seeds decide it); the black box "
        "spans the depths from the critical depth on."
    )
    return [_save(fig, out, "diff_heatmap", title, caption)]


def diff_by_depth(
    diffs: pd.DataFrame,
    critical: pd.DataFrame,
    conditions: list[str],
    settings: Settings,
    out: Path,
) -> list[Figure]:
    """The difference by depth with its interval band, one line per condition."""
    if diffs.empty or diffs["diff"].notna().sum() == 0:
        return []
    diffs = diffs.assign(_label=labels(diffs, conditions, always=("lr",)))
    critical = critical.assign(_label=labels(critical, conditions, always=("lr",)))
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    colors = sns.color_palette("colorblind", diffs["_label"].nunique())
    for color, (label, data) in zip(colors, diffs.groupby("_label", sort=True), strict=True):
        data = data.sort_values("depth")
        ax.plot(data["depth"], data["diff"] * 100, marker="o", color=color, label=label)
        ax.fill_between(
            data["depth"], data["ci_low"] * 100, data["ci_high"] * 100, color=color, alpha=0.2
        )
        depth = _won_from(critical, label)
        if depth is not None:
            at = data[data["depth"] == depth]
            ax.plot(at["depth"], at["diff"] * 100, marker="*", ms=16, color=color, mec="black")
    ax.axhline(0, color="grey", lw=1)
    ax.axhline(settings.margin * 100, color="grey", lw=1, ls="--", label="margin")
    ax.set_xticks(sorted(diffs["depth"].unique()))
    ax.set_xlabel("depth")
    ax.set_ylabel(f"{_pair_title(diffs)} (points)")
    title = f"Accuracy difference by depth, {_pair_title(diffs)}"
    ax.set_title(title)
    ax.legend(fontsize="small")
    caption = (
        f"Mean difference over seeds; band: its {settings.level:.0%} t interval (>= 2 seeds per "
        "model); dashed: the margin; star: the critical depth."
    )
    return [_save(fig, out, "diff_by_depth", title, caption)]


def stability_by_depth(
    stability: pd.DataFrame, gap: pd.DataFrame, conditions: list[str], settings: Settings, out: Path
) -> list[Figure]:
    """Left: the points each model loses at the higher lr, by depth; right: the baseline's
    loss minus the candidate's. Intervals as bars (>= 2 seeds); one figure per condition
    (but lr) and lr step."""
    if stability.empty or gap.empty:
        return []
    others = [c for c in conditions if c != "lr"]
    stability = stability.assign(_label=labels(stability, others))
    gap = gap.assign(_label=labels(gap, others))
    candidate, baseline = gap["candidate"].iloc[0], gap["baseline"].iloc[0]
    colors = _palette(sorted(stability["model"].unique()))
    figures = []
    for (label, high), lost in stability.groupby(["_label", "lr_high"], sort=True):
        low = lost["lr_low"].iloc[0]
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
        models = sorted(lost["model"].unique())
        for shift, model in zip(np.linspace(-0.06, 0.06, len(models)), models, strict=True):
            data = lost[lost["model"] == model].sort_values("depth")  # side by side: shifted
            error = _error_bars(data["drop"], data["ci_low"], data["ci_high"])
            left.errorbar(data["depth"] + shift, data["drop"] * 100, yerr=error, marker="o",
                          capsize=3, color=colors[model], label=model)  # fmt: skip
        at = gap[(gap["_label"] == label) & (gap["lr_high"] == high)].sort_values("depth")
        error = _error_bars(at["gap"], at["ci_low"], at["ci_high"])
        right.errorbar(at["depth"], at["gap"] * 100, yerr=error, marker="o", capsize=3,
                       color="black")  # fmt: skip
        depths = sorted(stability["depth"].unique())
        for ax in (left, right):
            ax.axhline(0, color="grey", lw=1)
            ax.set_xticks(depths)
            ax.set_xlim(depths[0] - 0.5, depths[-1] + 0.5)
            ax.set_xlabel("depth")
        left.set_ylabel(f"points lost, lr {low:g} → {high:g}")
        left.legend(fontsize="small")
        for sign in (-1, 1):  # inside both lines: neither loses more (within the margin)
            right.axhline(sign * settings.margin * 100, color="grey", lw=1, ls="--",
                          label="±margin" if sign > 0 else None)  # fmt: skip
        right.legend(fontsize="small")
        right.set_ylabel(f"{baseline} loses more than {candidate} (points)")
        title = f"Accuracy lost at lr {high:g}, by depth ({label})"
        fig.suptitle(title)
        caption = (
            f"Mean over seeds of the accuracy at lr {low:g} minus at lr {high:g}; bars: "
            f"{settings.level:.0%} t intervals (>= 2 seeds). Right: {baseline}'s loss minus "
            f"{candidate}'s, paired by seed; dashed: ±the margin (an interval between them: "
            "neither loses more)."
        )
        name = f"lr_stability_{_slug(label)}_{high:g}"
        figures.append(_save(fig, out, name, title, caption))
    return figures


def _error_bars(value: pd.Series, low: pd.Series, high: pd.Series) -> np.ndarray:
    """Asymmetric error bars in points (none where there is no interval)."""
    below, above = (value - low).fillna(0) * 100, (high - value).fillna(0) * 100
    return np.vstack([below.to_numpy(float), above.to_numpy(float)])


def warmup_curves(tidy: pd.DataFrame, settings: Settings, out: Path) -> list[Figure]:
    """For the DNN warm-up models: test accuracy and train loss by epoch, per learning rate."""
    data = tidy[tidy["model"].str.startswith("dnn")]
    if data.empty:
        return []
    long = data.melt(
        id_vars=["job", "model", "lr", "seed", "epoch"],
        value_vars=[settings.metric, "train_loss"],
        var_name="quantity",
        value_name="value",
    )
    long["quantity"] = long["quantity"].replace(METRIC_LABELS).replace({"train_loss": "train loss"})
    long["lr"] = long["lr"].map("lr={:g}".format)
    grid = sns.relplot(
        data=long,
        x="epoch",
        y="value",
        hue="model",
        row="quantity",
        col="lr",
        kind="line",
        errorbar=SEED_BAND,
        palette=_palette(long["model"].unique().tolist()),
        marker="o",
        height=2.6,
        aspect=1.3,
        facet_kws={"sharey": "row", "margin_titles": True},
    )
    grid.set_axis_labels("epoch", "")
    _integer_epochs(grid)
    grid.figure.suptitle("Warm-up (DNN): accuracy and train loss by epoch", y=1.02)
    caption = "Mean over seeds; the band spans all seeds (min to max)."
    return [_save(grid.figure, out, "warmup_curves", "Warm-up: accuracy and train loss", caption)]


def seed_scores(
    scores: pd.DataFrame, spread: pd.DataFrame, conditions: list[str], settings: Settings, out: Path
) -> list[Figure]:
    """Each seed's score by depth, models side by side, one panel per condition; a wide
    cell's depth is marked with a "!" above its panel's axis."""
    scored = scores[scores["score"].notna()]
    if scored.empty or spread.empty:
        return []
    scored = scored.assign(_label=labels(scored, conditions, always=("lr",)))
    scored = scored.assign(points=scored["score"] * 100)
    spread = spread.assign(_label=labels(spread, conditions, always=("lr",)))
    depths = sorted(scored["depth"].unique())
    state = np.random.get_state()  # seaborn jitters with the global RNG: a fixed draw gives
    np.random.seed(0)  # the same figure for the same scores; the caller's state comes back
    try:
        grid = sns.catplot(
            data=scored,
            x="depth",
            y="points",
            hue="model",
            col="_label",
            col_wrap=min(scored["_label"].nunique(), 2),
            kind="strip",
            dodge=True,
            jitter=0.12,
            order=depths,
            palette=_palette(scored["model"].unique().tolist()),
            height=3.0,
            aspect=1.4,
            s=28,
        )
    finally:
        np.random.set_state(state)
    for label, ax in grid.axes_dict.items():
        ax.set_title(str(label), pad=14)
        wide = spread[(spread["_label"] == label) & spread["wide"]]
        for depth in sorted(wide["depth"].unique()):
            ax.annotate("!", (depths.index(depth), 1.0), xycoords=("data", "axes fraction"),
                        ha="center", va="bottom", color="firebrick", weight="bold")  # fmt: skip
    grid.set_axis_labels("depth", "score (%)")
    title = "Each seed's score by depth"
    grid.figure.suptitle(title, y=1.06)
    caption = (
        'One dot per seed (the score the comparison uses); "!": a depth where a model\'s '
        f"seeds are wide (sd above {settings.spread:g} times the sweep's typical cell's)."
    )
    return [_save(grid.figure, out, "seed_scores", title, caption)]
