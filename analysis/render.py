"""The report for people: tables of percentages, signed points and intervals, and a list
of ``Section``s rendered to Markdown and to one self-contained HTML page."""

from __future__ import annotations

import base64
import html
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.frames import EXTRA_PREFIX, condition_label, missing


def pct(value: Any) -> str:
    return "" if missing(value) else f"{value * 100:.1f}"


def points(value: Any) -> str:
    return "" if missing(value) else f"{value * 100:+.1f}"


def in_points(fraction: float) -> str:
    """``1 point``, ``0.5 points``: an accuracy fraction as points, in words."""
    value = fraction * 100
    return f"{value:g} point{'' if value == 1 else 's'}"


def interval(low: Any, high: Any) -> str:
    return "" if missing(low) else f"[{points(low)}, {points(high)}]"


def plain(value: Any) -> str:
    if missing(value):
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def condition_text(condition: Iterable[tuple[str, Any]]) -> str:
    """``lr=0.003, batch_size=100``: a condition's (column, value) pairs as the printed pages
    and plans name it (a missing value blank)."""
    return condition_label(dict(condition), blank="")


def _conditions(frame: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    shown = {c: c.removeprefix(EXTRA_PREFIX) for c in conditions if c in frame}
    return frame[list(shown)].rename(columns=shown).map(plain)


def cell_states(diffs: pd.DataFrame) -> pd.Series:
    """Each per-depth cell's state as pages show it (compare's ``label`` where present: no
    win, lose, win beyond the margin; else the state)."""
    return diffs["label"] if "label" in diffs else diffs["state"]


def _intervals(frame: pd.DataFrame) -> list[str]:
    """Each row's interval (columns ``ci_low``, ``ci_high``) in points."""
    return [interval(lo, hi) for lo, hi in zip(frame["ci_low"], frame["ci_high"], strict=True)]


def critical_table(critical: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    out = _conditions(critical, conditions)
    out["comparison"] = critical["candidate"] + " vs " + critical["baseline"]
    out["depths swept"] = critical["depths"]
    out["seeds"] = critical["seeds"]
    out["epoch"] = critical["epoch"].map(plain)
    out["critical depth"] = critical["critical_depth"]
    out["verdict"] = critical["verdict"]
    out["detail"] = critical["detail"]
    return out


def diffs_table(
    diffs: pd.DataFrame, conditions: list[str], spread: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The per-depth cells; with ``spread``, a cell's note names the models whose seeds
    there are wide."""
    candidate, baseline = diffs["candidate"].iloc[0], diffs["baseline"].iloc[0]
    out = _conditions(diffs, conditions)
    out["depth"] = diffs["depth"].map(plain)
    out["seeds"] = diffs["n_a"].map(plain) + " / " + diffs["n_b"].map(plain)
    out[f"{candidate} %"] = diffs["mean_a"].map(pct)
    out[f"{baseline} %"] = diffs["mean_b"].map(pct)
    out["difference (points)"] = diffs["diff"].map(points)
    out["interval"] = _intervals(diffs)
    out["method"] = diffs["method"]
    out["state"] = cell_states(diffs)
    out["note"] = diffs["note"]
    if spread is not None and not spread.empty and spread["wide"].any():
        keys = [*[c for c in conditions if c in spread], "depth"]
        wide = spread[spread["wide"]].groupby(keys, dropna=False)["model"]
        models = wide.agg(lambda m: " and ".join(sorted(m)))
        marks = [models.get(tuple(k)) for k in diffs[keys].itertuples(index=False)]
        out["note"] = [
            "; ".join(n for n in (note, mark and f"{mark}: seeds wide") if n)
            for note, mark in zip(out["note"], marks, strict=True)
        ]
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
    out["interval"] = _intervals(stability)
    out["method"] = stability["method"]
    return out


GAP_STATES = {
    "baseline loses more": "{baseline} loses more",
    "candidate loses more": "{candidate} loses more",
    "within the margin": "neither (within the margin)",
}


def gap_table(gap: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    candidate, baseline = gap["candidate"].iloc[0], gap["baseline"].iloc[0]
    out = _conditions(gap, [c for c in conditions if c != "lr"])
    out["depth"] = gap["depth"].map(plain)
    out["lr low → high"] = gap["lr_low"].map(plain) + " → " + gap["lr_high"].map(plain)
    out["seeds"] = gap["n"].map(plain)
    out[f"{baseline} lost"] = gap["drop_baseline"].map(points)
    out[f"{candidate} lost"] = gap["drop_candidate"].map(points)
    out[f"{baseline} lost more (points)"] = gap["gap"].map(points)
    out["interval"] = _intervals(gap)
    out["method"] = gap["method"]
    out["state"] = [
        GAP_STATES.get(s, s).format(candidate=candidate, baseline=baseline) for s in gap["state"]
    ]
    return out


def spread_table(spread: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    """Per cell and model: its seeds' scores in seed order, mean, sd and range."""
    spread = spread.sort_values([*[c for c in conditions if c in spread], "depth", "model"])
    out = _conditions(spread, conditions)
    out["depth"] = spread["depth"].map(plain)
    out["model"] = spread["model"]
    out["seeds"] = spread["seeds"].map(lambda s: ",".join(map(str, s)))
    out["scores % (by seed)"] = spread["scores"].map(lambda s: ", ".join(map(pct, s)))
    out["mean %"] = spread["mean"].map(pct)
    out["sd (points)"] = spread["sd"].map(pct)
    out["range (points)"] = (spread["high"] - spread["low"]).map(pct)
    out["wide"] = spread["wide"].map({True: "wide", False: ""})
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
    out["seconds"] = jobs["total_seconds"].map(lambda v: "" if missing(v) else f"{v:.0f}")
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


def _cell_html(value: Any) -> str:
    """A cell's text, breakable after each comma: a job dir (``model.depth=1,model=vit,...``)
    or a list of values then wraps instead of widening the table past the page."""
    return html.escape(str(value)).replace(",", ",<wbr>")


def html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_cell_html(v)}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    # A table still wider than the page scrolls inside its own box.
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    return f'<div class="table">{table}</div>'


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:1250px;padding:0 1.5rem;color:#1d232a;line-height:1.45}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2.2rem;
border-bottom:1px solid #d8dde3;padding-bottom:.25rem}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.86rem}
th,td{border:1px solid #d8dde3;padding:.25rem .55rem;text-align:left;vertical-align:top}
.table{overflow-x:auto}
th{background:#f1f4f7}tbody tr:nth-child(even){background:#fafbfc}
code,pre{background:#f1f4f7;border-radius:4px;font-size:.86rem}pre{padding:.6rem;overflow-x:auto}
figure{margin:1rem 0 1.8rem}figure img{max-width:100%;height:auto;border:1px solid #e4e8ec}
figcaption{font-size:.85rem;color:#4a5560}.muted{color:#5c6670;font-size:.9rem}
"""


@dataclass
class Figure:
    """A saved figure, drawn by ``analysis.figures``: ``name`` is its file stem."""

    name: str
    title: str
    caption: str
    png: Path
    svg: Path


@dataclass
class Section:
    """A heading with text, bullets, code, tables, notes and figures, in that order."""

    title: str
    text: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    tables: list[pd.DataFrame] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


def to_markdown(title: str, subtitle: str, sections: list[Section], base: Path) -> str:
    """Markdown; figures are linked relative to ``base`` (the report dir)."""
    lines = [f"# {title}", "", subtitle, ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for text in section.text:
            lines += [text, ""]
        if section.bullets:
            lines += [f"- {b}" for b in section.bullets] + [""]
        for code in section.code:
            lines += ["```", code, "```", ""]
        for table in section.tables:
            lines += [markdown(table), ""]
        if section.notes:
            lines += [f"- {n}" for n in section.notes] + [""]
        for fig in section.figures:
            rel = os.path.relpath(fig.png, base)
            lines += [f"![{fig.title}]({rel})", "", f"*{fig.caption}*", ""]
    return "\n".join(lines)


def _img(fig: Figure, base: Path) -> str:
    data = base64.b64encode(fig.png.read_bytes()).decode("ascii")
    svg = html.escape(os.path.relpath(fig.svg, base))
    return (
        f'<figure id="{html.escape(fig.name)}"><img alt="{html.escape(fig.title)}" '
        f'src="data:image/png;base64,{data}"><figcaption>{html.escape(fig.caption)} '
        f'(<a href="{svg}">SVG</a>)</figcaption></figure>'
    )


def to_html(title: str, subtitle: str, sections: list[Section], base: Path) -> str:
    """One self-contained HTML page: inline CSS, figures embedded as base64 PNG."""
    body = [f"<h1>{html.escape(title)}</h1>", f'<p class="muted">{html.escape(subtitle)}</p>']
    for section in sections:
        anchor = re.sub(r"[^a-z0-9]+", "-", section.title.lower()).strip("-")
        body.append(f'<h2 id="{anchor}">{html.escape(section.title)}</h2>')
        body += [f"<p>{html.escape(text)}</p>" for text in section.text]
        if section.bullets:
            items = "".join(f"<li>{html.escape(b)}</li>" for b in section.bullets)
            body.append(f"<ul>{items}</ul>")
        body += [f"<pre><code>{html.escape(code)}</code></pre>" for code in section.code]
        body += [html_table(table) for table in section.tables]
        if section.notes:
            items = "".join(f"<li>{html.escape(n)}</li>" for n in section.notes)
            body.append(f'<ul class="muted">{items}</ul>')
        body += [_img(fig, base) for fig in section.figures]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
