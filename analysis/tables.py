"""Tables for people: percentages, signed points, intervals; rendered as Markdown or HTML."""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from analysis.frames import EXTRA_PREFIX


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def pct(value: Any) -> str:
    return "" if _missing(value) else f"{value * 100:.1f}"


def points(value: Any) -> str:
    return "" if _missing(value) else f"{value * 100:+.1f}"


def interval(low: Any, high: Any) -> str:
    return "" if _missing(low) else f"[{low * 100:+.1f}, {high * 100:+.1f}]"


def plain(value: Any) -> str:
    if _missing(value):
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _conditions(frame: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    shown = {c: c.removeprefix(EXTRA_PREFIX) for c in conditions if c in frame}
    return frame[list(shown)].rename(columns=shown).map(plain)


def critical_table(critical: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    out = _conditions(critical, conditions)
    out["comparison"] = critical["candidate"] + " vs " + critical["baseline"]
    out["depths swept"] = critical["depths"]
    out["seeds"] = critical["seeds"]
    out["epoch"] = critical["epoch"].map(plain)
    out["critical depth"] = critical["critical_depth"].map(plain)
    out["verdict"] = critical["verdict"]
    out["detail"] = critical["detail"]
    return out


def diffs_table(diffs: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    candidate, baseline = diffs["candidate"].iloc[0], diffs["baseline"].iloc[0]
    out = _conditions(diffs, conditions)
    out["depth"] = diffs["depth"].map(plain)
    out["seeds"] = diffs["n_a"].map(plain) + " / " + diffs["n_b"].map(plain)
    out[f"{candidate} %"] = diffs["mean_a"].map(pct)
    out[f"{baseline} %"] = diffs["mean_b"].map(pct)
    out["difference (points)"] = diffs["diff"].map(points)
    out["interval"] = [
        interval(lo, hi) for lo, hi in zip(diffs["ci_low"], diffs["ci_high"], strict=True)
    ]
    out["wins"] = diffs["state"].map({"win": "yes", "lose": "no", "no data": "no data"})
    out["note"] = diffs["note"]
    return out


def stability_table(stability: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    out = _conditions(stability, [c for c in conditions if c != "lr"])
    out["model"] = stability["model"]
    out["depth"] = stability["depth"].map(plain)
    out["lr low → high"] = stability["lr_low"].map(plain) + " → " + stability["lr_high"].map(plain)
    out["seeds"] = stability["n_low"].map(plain) + " / " + stability["n_high"].map(plain)
    out["acc at low %"] = stability["acc_low"].map(pct)
    out["acc at high %"] = stability["acc_high"].map(pct)
    out["lost (points)"] = stability["drop"].map(points)
    out["interval"] = [
        interval(lo, hi) for lo, hi in zip(stability["ci_low"], stability["ci_high"], strict=True)
    ]
    return out


def jobs_table(summary: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    jobs = summary.sort_values(["model", *[c for c in conditions if c in summary], "depth", "seed"])
    out = jobs[["model", "depth"]].map(plain)
    out = pd.concat([out, _conditions(jobs, conditions)], axis=1)
    out["seed"] = jobs["seed"].map(plain)
    out["status"] = jobs["status"] + jobs["duplicate"].map({True: " (duplicate)", False: ""})
    out["epochs"] = jobs["epochs_run"].map(plain) + "/" + jobs["epochs"].map(plain)
    out["final %"] = jobs["final_test_acc"].map(pct)
    out["final clean %"] = jobs["final_test_acc_clean"].map(pct)
    out["best %"] = jobs["best_test_acc"].map(pct)
    out["seconds"] = jobs["total_seconds"].map(lambda v: "" if _missing(v) else f"{v:.0f}")
    out["job"] = jobs["job"]
    return out


def markdown(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of string cells."""

    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(map(cell, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(map(cell, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
