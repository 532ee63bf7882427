"""One BENCHMARKS.md table row from its cells (a ``|`` inside a cell is escaped as ``\\|``)."""

from __future__ import annotations

from collections.abc import Sequence

COLUMNS = ("benchmark", "command", "baseline", "ours", "ratio", "device", "date")


def escape_cell(text: str) -> str:
    """A cell's text with ``|`` escaped (an unescaped one would split the cell)."""
    return text.replace("\\|", "|").replace("|", "\\|")


def markdown_row(cells: Sequence[str]) -> str:
    """``| a | b | ... |`` for the seven columns of BENCHMARKS.md's table."""
    if len(cells) != len(COLUMNS):
        raise ValueError(f"a benchmark row has {len(COLUMNS)} cells ({', '.join(COLUMNS)})")
    return "| " + " | ".join(escape_cell(str(c)) for c in cells) + " |"
