"""The report as one self-contained HTML page.

Figures are embedded interactively by default: plotly.js is inlined once in the page (about
4.7 MB) and each figure is a small div of its JSON (10-20 kB). That keeps what PNGs lose (hover
text with item counts, p-values, SAE latent examples; zoom), works offline, needs no Chromium,
and is not even larger: with the study's 17 figures the interactive page measured 5.0 MB, the
PNG one 6.0 MB (2x-scale PNGs of 150-350 kB each, base64). ``embed="png"`` embeds the exported
PNGs for a static page (or one with few figures, where plotly.js would dominate); a figure
without a PNG then falls back to the interactive div.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from interp.report.formatting import MAX_ROWS, formatted

Embed = Literal["plotly", "png"]

_CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 17px; color: #222; \
max-width: 1280px;
       margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 30px; } h2 { font-size: 24px; border-bottom: 1px solid #ccc; padding-bottom: .2em; \
margin-top: 2em; }
h3 { font-size: 19px; }
table { border-collapse: collapse; font-size: 14px; margin: .5em 0 1em; }
th, td { padding: 3px 8px; border-bottom: 1px solid #e2e2e2; text-align: right; }
th { border-bottom: 2px solid #555; } td:first-child, th:first-child { text-align: left; }
.verdict { background: #f6f6f6; border-left: 5px solid #D55E00; padding: .6em 1em; }
.note { color: #555; font-style: italic; } figure { margin: 1em 0 2em; } img { max-width: 100%; }
.scroll { overflow-x: auto; }
"""


def html_table(df: pd.DataFrame, max_rows: int | None = MAX_ROWS) -> str:
    """A plain escaped HTML table of the first ``max_rows`` rows (and a note on the rest)."""
    text, left_out = formatted(df, max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>"
        for row in text.itertuples(index=False)
    )
    note = f'<p class="note">{left_out} more rows in the CSV.</p>' if left_out else ""
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>{note}"
    )


def figure_block(name: str, fig: go.Figure, embed: Embed, png: Path | None) -> str:
    """One figure: base64 PNG when asked for and present, else the interactive plotly div."""
    title = html.escape(str(fig.layout.title.text or name))
    if embed == "png" and png is not None and png.is_file():
        data = base64.b64encode(png.read_bytes()).decode()
        body = f'<img alt="{title}" src="data:image/png;base64,{data}">'
    else:
        body = pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs=False,
            div_id=f"fig-{name}",
            config={"responsive": True},
        )
    return f'<figure id="{html.escape(name)}">{body}</figure>'


def html_report(
    title: str,
    verdict: Sequence[str],
    figures: Mapping[str, go.Figure],
    tables: Mapping[str, pd.DataFrame],
    provenance: pd.DataFrame,
    *,
    embed: Embed = "plotly",
    pngs: Mapping[str, Path] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The whole page as a string (no external references)."""
    pngs = pngs or {}
    blocks = [figure_block(n, f, embed, pngs.get(n)) for n, f in figures.items()]
    needs_js = any('class="plotly-graph-div"' in b for b in blocks)
    script = f"<script>{get_plotlyjs()}</script>" if needs_js else ""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style>{script}</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Verdict</h2><div class='verdict'>"
        + "".join(f"<p>{html.escape(s)}</p>" for s in verdict)
        + "</div>",
        "".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes),
        "<h2>Figures</h2>",
        *blocks,
        "<h2>Tables</h2>",
        *(f"<h3>{html.escape(t)}</h3>{html_table(df)}" for t, df in tables.items()),
        "<h2>Provenance</h2>",
        html_table(provenance, max_rows=None),
        "</body></html>",
    ]
    return "\n".join(parts)
