"""A report as a list of ``Section``s, rendered to Markdown and to self-contained HTML."""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.figures import Figure
from analysis.tables import html_table, markdown

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:1250px;padding:0 1.5rem;color:#1d232a;line-height:1.45}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2.2rem;
border-bottom:1px solid #d8dde3;padding-bottom:.25rem}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.86rem}
th,td{border:1px solid #d8dde3;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#f1f4f7}tbody tr:nth-child(even){background:#fafbfc}
code,pre{background:#f1f4f7;border-radius:4px;font-size:.86rem}pre{padding:.6rem;overflow-x:auto}
figure{margin:1rem 0 1.8rem}figure img{max-width:100%;height:auto;border:1px solid #e4e8ec}
figcaption{font-size:.85rem;color:#4a5560}.muted{color:#5c6670;font-size:.9rem}
"""


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
        body.append(f"<h2>{html.escape(section.title)}</h2>")
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
