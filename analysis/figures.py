"""The report's seaborn figures, each saved as PNG (150 dpi) and SVG."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from analysis.compare import NOT_ENOUGH  # noqa: E402
from analysis.frames import condition_label, named_conditions  # noqa: E402
from analysis.render import Figure, cell_states  # noqa: E402
from analysis.settings import Settings  # noqa: E402

SEED_BAND = ("pi", 100)  # the band spans all seeds (min to max)
METRIC_LABELS = {
    "test_acc": "test accuracy (augmented, %)",
    "test_acc_clean": "test accuracy (clean, %)",
}
SHORT_LABELS = {"test_acc": "test acc. (augm., %)", "test_acc_clean": "test acc. (clean, %)"}
ACCURACIES = ("test_acc", "test_acc_clean", "train_acc")  # fractions in the data, % on figures
BAND_WORDS = "the band (bars, with one epoch) spans all seeds, min to max"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", text).strip("_")


def _save(fig: plt.Figure, out: Path, name: str, title: str, caption: str) -> Figure:
    out.mkdir(parents=True, exist_ok=True)
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    fig.savefig(png, dpi=150, bbox_inches="tight")
    fig.savefig(svg, bbox_inches="tight")
    plt.close(fig)
    return Figure(name, title, caption, png, svg)


def _in_percent(frame: pd.DataFrame) -> pd.DataFrame:
    """The accuracy columns as percentages, the unit of every table."""
    shown = [c for c in ACCURACIES if c in frame]
    return frame.assign(**{c: frame[c] * 100 for c in shown})


def _by_epoch(
    data: pd.DataFrame,
    y: str,
    ylabel: str,
    title: str,
    titles: dict[str, str],
    title_y: float = 1.03,
    **look: Any,
) -> sns.FacetGrid:
    """Lines by epoch, the mean over seeds with the seed band, whole epochs on the x axis: the
    shape every by-epoch figure shares. ``look``: its facets and style (``sns.relplot``'s);
    ``titles``: ``FacetGrid.set_titles``'."""
    epochs = data["epoch"]
    # Seeds as a band over epochs; as error bars when there is one epoch (a band of one
    # point is invisible).
    one = {"err_style": "bars", "err_kws": {"capsize": 4}} if epochs.nunique() == 1 else {}
    grid = sns.relplot(data=data, x="epoch", y=y, kind="line", errorbar=SEED_BAND, **look, **one)
    grid.set_axis_labels("epoch", ylabel)
    grid.set_titles(**titles)
    # Whole epochs on the x axis, also for one or two epochs (where matplotlib would label
    # 0.95 ... 1.05).
    low, high = int(epochs.min()), int(epochs.max())
    for ax in grid.axes.flat:
        if high - low < 12:
            ax.set_xticks(range(low, high + 1))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(low - 0.5, high + 0.5)
    grid.figure.suptitle(title, y=title_y)
    return grid


def _per_depth(data: pd.DataFrame) -> dict[str, Any]:
    """One panel per depth, four to a row, so the page shows it near its own size: the fonts
    stay readable (a model x depth grid was 7 panels wide and shrank to half)."""
    return {
        "col": "depth",
        "col_wrap": min(data["depth"].nunique(), 4),
        "titles": {"col_template": "depth {col_name}"},
    }


def _palette(models: list[str]) -> dict[str, tuple]:
    return dict(zip(sorted(models), sns.color_palette("colorblind", len(models)), strict=True))


def labels(frame: pd.DataFrame, conditions: list[str], always: tuple[str, ...] = ()) -> pd.Series:
    """Per row, the label of its values of the ``conditions`` that vary (plus ``always``)."""
    shown = named_conditions(frame, conditions, always)
    if not shown:
        return pd.Series("all", index=frame.index)
    return frame[shown].apply(lambda r: condition_label(r.to_dict()), axis=1)


def accuracy_curves(
    tidy: pd.DataFrame, conditions: list[str], settings: Settings, out: Path
) -> list[Figure]:
    """Accuracy by epoch faceted by depth, model as hue, seeds as a band; one per condition."""
    figures = []
    palette = _palette(tidy["model"].unique().tolist())
    tidy = _in_percent(tidy).assign(_label=labels(tidy, conditions, always=("lr",)))
    for label, data in tidy.groupby("_label", sort=True):
        grid = _by_epoch(
            data,
            settings.metric,
            METRIC_LABELS[settings.metric],
            f"Accuracy by epoch ({facet_title(label)})",
            hue="model",
            palette=palette,
            marker="o",
            height=2.6,
            aspect=1.15,
            **_per_depth(data),
        )
        title = f"Accuracy by epoch, {label}"
        caption = f"Mean over seeds, in %; {BAND_WORDS}. One panel per depth."
        figures.append(_save(grid.figure, out, f"curves_{_slug(label)}", title, caption))
    return figures


def lr_comparison(
    tidy: pd.DataFrame, conditions: list[str], settings: Settings, out: Path
) -> list[Figure]:
    """Accuracy by epoch per learning rate (colour) and model (line style), one panel per depth."""
    if tidy["lr"].nunique() < 2:
        return []
    others = [c for c in conditions if c != "lr"]
    tidy = _in_percent(tidy).assign(
        _label=labels(tidy, others), **{"learning rate": tidy["lr"].map("{:g}".format)}
    )
    figures = []
    for label, data in tidy.groupby("_label", sort=True):
        with sns.plotting_context("notebook", font_scale=1.15):
            grid = _by_epoch(
                data,
                settings.metric,
                SHORT_LABELS[settings.metric],
                f"Learning rates compared ({label})",
                hue="learning rate",
                style="model",
                palette="flare",
                height=3.0,
                aspect=1.2,
                **_per_depth(data),
            )
        caption = (
            f"Mean over seeds, in %, by learning rate (colour) and model (line style); "
            f"{BAND_WORDS}. One panel per depth."
        )
        name = f"lr_comparison_{_slug(label)}"
        figures.append(_save(grid.figure, out, name, f"Learning rates compared, {label}", caption))
    return figures


def _pair_title(diffs: pd.DataFrame) -> str:
    return f"{diffs['candidate'].iloc[0]} − {diffs['baseline'].iloc[0]}"


def _won_from(critical: pd.DataFrame, conditions: list[str]) -> dict[str, int]:
    """Per condition label, the swept depth its critical depth was found at: resolved ones only."""
    won = {}
    named = critical.assign(_label=labels(critical, conditions, always=("lr",)))
    for row in named.to_dict("records"):
        high = row["critical_depth_high"]
        if not (row["open_depths"] or pd.isna(high) or row["verdict"] == NOT_ENOUGH):
            won[row["_label"]] = int(high)
    return won


def diff_heatmap(
    diffs: pd.DataFrame, critical: pd.DataFrame, conditions: list[str], out: Path
) -> list[Figure]:
    """Depth x learning rate (x other condition) heatmap of the difference, each cell with
    its value and state in words, critical depth boxed. Each column has its own colour
    scale: one scale for all would leave a column of 2-4 point wins nearly white beside a
    column of 20 point wins."""
    if diffs.empty or diffs["diff"].notna().sum() == 0:
        return []
    diffs = diffs.assign(_label=labels(diffs, conditions, always=("lr",)), _shown=cell_states)
    won = _won_from(critical, conditions)
    points = diffs.pivot_table(index="depth", columns="_label", values="diff", dropna=False) * 100
    states = diffs.pivot_table(index="depth", columns="_label", values="_shown", aggfunc="first")
    states = states.reindex_like(points)
    annot = pd.DataFrame(
        [
            [
                "" if np.isnan(v) else f"{v:+.1f}\n{s}"
                for v, s in zip(points[c], states[c].fillna(""), strict=True)
            ]
            for c in points.columns
        ],
        index=points.columns,
        columns=points.index,
    ).T
    bounds = points.abs().max().replace(0, np.nan).fillna(1.0)
    scaled = points / bounds  # each column from -1 to 1 at its own largest |difference|
    width = 1.6 + 1.6 * len(points.columns)
    fig, ax = plt.subplots(figsize=(max(width, 4.5), 0.62 * len(points) + 1.8))
    with warnings.catch_warnings():  # seaborn's own use of a deprecated colormap call
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        sns.heatmap(
            scaled,
            annot=annot,
            fmt="",
            cmap="RdBu",
            center=0,
            vmin=-1,
            vmax=1,
            linewidths=0.5,
            cbar=False,
            annot_kws={"fontsize": 8},
            ax=ax,
        )
    for col, label in enumerate(points.columns):
        if label not in won:
            continue
        row = list(points.index).index(won[label])
        height = len(points.index) - row
        ax.add_patch(Rectangle((col, row), 1, height, fill=False, edgecolor="black", lw=2.5))
    ax.set_xticklabels([f"{facet_title(c)}\n(scale ±{b:.1f})" for c, b in bounds.items()])
    ax.set_xlabel("")
    ax.set_ylabel("depth")
    title = f"Accuracy difference {_pair_title(diffs)} (points)"
    ax.set_title(title)
    caption = (
        "Mean difference over seeds in percentage points, with each cell's state in words "
        "(win, no win, lose, unresolved: the per-depth table's); blue: the candidate ahead, "
        "red: behind, each column on its own colour scale (its largest |difference|, under its "
        "name); the black box spans the depths from the critical depth on."
    )
    return [_save(fig, out, "diff_heatmap", title, caption)]


def diff_by_depth(
    diffs: pd.DataFrame,
    critical: pd.DataFrame,
    conditions: list[str],
    settings: Settings,
    out: Path,
) -> list[Figure]:
    """The difference by depth with its interval band, one panel per condition, each with its
    own y axis (a shared one, set by lr 0.005's 20-point gains, flattened lr 0.003's 2-4)."""
    if diffs.empty or diffs["diff"].notna().sum() == 0:
        return []
    diffs = diffs.assign(_label=labels(diffs, conditions, always=("lr",)))
    won = _won_from(critical, conditions)
    panels = list(diffs.groupby("_label", sort=True))
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4.6 * len(panels) + 0.6, 3.8), sharey=False, squeeze=False
    )
    colors = sns.color_palette("colorblind", len(panels))
    for ax, color, (label, data) in zip(axes.flat, colors, panels, strict=True):
        data = data.sort_values("depth")
        ax.plot(data["depth"], data["diff"] * 100, marker="o", color=color, label="mean")
        interval = f"{settings.level:.0%} interval"
        if len(data) == 1:  # a band over one depth has no width: a bar instead
            error = _error_bars(data["diff"], data["ci_low"], data["ci_high"])
            ax.errorbar(data["depth"], data["diff"] * 100, yerr=error, color=color, capsize=4,
                        ls="none", label=interval)  # fmt: skip
        else:
            ax.fill_between(data["depth"], data["ci_low"] * 100, data["ci_high"] * 100,
                            color=color, alpha=0.2, label=interval)  # fmt: skip
        if label in won:
            at = data[data["depth"] == won[label]]
            ax.plot(at["depth"], at["diff"] * 100, marker="*", ms=16, color=color, mec="black",
                    ls="none", label="critical depth")  # fmt: skip
        ax.axhline(0, color="grey", lw=1)
        ax.axhline(settings.margin * 100, color="grey", lw=1, ls="--", label="margin")
        ax.set_xticks(sorted(diffs["depth"].unique()))
        ax.set_xlabel("depth")
        ax.set_title(facet_title(label))
    axes.flat[0].set_ylabel(f"{_pair_title(diffs)} (points)")
    axes.flat[0].legend(fontsize="small")
    title = f"Accuracy difference by depth, {_pair_title(diffs)}"
    fig.suptitle(title, y=1.02)
    caption = (
        f"Mean difference over seeds in points; band (bar at a lone depth): its "
        f"{settings.level:.0%} t interval "
        "(>= 2 seeds per model); dashed: the margin; star: the critical depth. Each panel has "
        "its own y axis."
    )
    return [_save(fig, out, "diff_by_depth", title, caption)]


def facet_title(label: str) -> str:
    """``lr = 0.003, batch_size = 100`` for the label ``lr=0.003, batch_size=100``."""
    return label.replace("=", " = ")


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
    data = _in_percent(data)
    long = data.melt(
        id_vars=["job", "model", "lr", "seed", "epoch"],
        value_vars=[settings.metric, "train_loss"],
        var_name="quantity",
        value_name="value",
    )
    long["quantity"] = long["quantity"].replace(METRIC_LABELS).replace({"train_loss": "train loss"})
    long["lr"] = long["lr"].map("{:g}".format)  # seaborn titles the facet "lr = 0.01"
    grid = _by_epoch(
        long,
        "value",
        "",
        "Warm-up (DNN): accuracy and train loss by epoch",
        titles={"col_template": "lr = {col_name}", "row_template": "{row_name}"},
        title_y=1.02,
        hue="model",
        row="quantity",
        col="lr",
        palette=_palette(long["model"].unique().tolist()),
        marker="o",
        height=2.6,
        aspect=1.3,
        facet_kws={"sharey": "row", "margin_titles": True},
    )
    caption = f"Mean over seeds (accuracy in %); {BAND_WORDS}."
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
        ax.set_title(facet_title(str(label)), pad=14)
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
