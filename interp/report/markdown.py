"""The report's Markdown twin: same sections as the HTML page, figures as image links."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from interp.report.formatting import MAX_ROWS, formatted


def _cell(text: str) -> str:
    return str(text).replace("|", r"\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame, max_rows: int | None = MAX_ROWS) -> str:
    """A GitHub pipe table of ``df`` (first ``max_rows`` rows, with a note on the rest)."""
    text, left_out = formatted(df, max_rows)
    lines = ["| " + " | ".join(_cell(c) for c in df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += [
        "| " + " | ".join(_cell(v) for v in row) + " |" for row in text.itertuples(index=False)
    ]
    if left_out:
        lines.append(f"\n*{left_out} more rows in the CSV.*")
    return "\n".join(lines) + "\n"


def markdown_report(
    title: str,
    verdict: Sequence[str],
    figures: Mapping[str, tuple[str, str]],
    tables: Mapping[str, pd.DataFrame],
    provenance: pd.DataFrame,
    notes: Sequence[str] = (),
) -> str:
    """The whole report. ``figures``: name -> (title, relative link to its PNG or HTML);
    ``tables``: section title -> table."""
    parts = [f"# {title}\n", "## Verdict\n", *(f"{s}\n" for s in verdict)]
    if notes:
        parts += ["", *(f"> {n}\n" for n in notes)]
    parts.append("\n## Figures\n")
    for name, (fig_title, link) in figures.items():
        image = link.endswith((".png", ".svg", ".jpg"))
        parts.append(
            f"### {fig_title}\n\n"
            + (f"![{fig_title}]({link})\n" if image else f"[{name} (interactive)]({link})\n")
        )
    parts.append("\n## Tables\n")
    for table_title, df in tables.items():
        parts.append(f"### {table_title}\n\n{markdown_table(df)}")
    parts.append("\n## Provenance\n\n" + markdown_table(provenance, max_rows=None))
    return "\n".join(parts)
