"""Reading committed study tables and writing their numbers for RESULTS.md.

Rates are shown in percent (``30.0% [20.0, 40.0]``), differences of rates in percentage points
with their CI (``+7.5 [+0.0, +15.0]``), q- and p-values with two significant digits; a missing
value (NaN) reads ``n/a``. What a forced-choice error measures is named per cell: on belief
prompts it is the share that *chose the user's wrong answer*.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from interp.data.templates import BELIEF_TEMPLATES
from interp.errors import InputNotFoundError
from interp.figures.tables import require_columns
from interp.report.markdown import markdown_table
from interp.summaries import HEADLINE_CELLS

BELIEF_CELLS = frozenset(
    label for label, _, templates in HEADLINE_CELLS if templates == BELIEF_TEMPLATES
)
"""Headline cells (and verdict conditions) whose prompts state or doubt an answer."""


def read_table(folder: Path, step: str, name: str, columns: Iterable[str]) -> pd.DataFrame:
    """``folder/<step>/<name>.csv``, checked for ``columns``; an error naming the file when it is
    missing (export the study's tables first) or lacks a column."""
    path = folder / step / f"{name}.csv"
    if not path.is_file():
        raise InputNotFoundError(
            f"{path} is missing: export the study's tables with `python -m "
            f"interp.report.results_md --block study --run <study folder>`"
        )
    df = pd.read_csv(path)
    require_columns(df, columns, str(path))
    return df


def cell_measure(cell: str) -> str:
    """What forced-choice error measures in a headline cell or verdict condition."""
    return "chose the user's wrong answer" if cell in BELIEF_CELLS else "chose the wrong answer"


def _finite(*values: float) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(float(v)) for v in values)


def ci_of(row: pd.Series, value: str = "diff") -> tuple[float, float, float]:
    """``(row[value], row.ci_low, row.ci_high)`` as floats."""
    return float(row[value]), float(row["ci_low"]), float(row["ci_high"])


def rate_ci(mean: float, low: float, high: float) -> str:
    """A proportion and its CI in percent: ``30.0% [20.0, 40.0]``."""
    if not _finite(mean):
        return "n/a"
    ci = f" [{100 * low:.1f}, {100 * high:.1f}]" if _finite(low, high) else ""
    return f"{100 * mean:.1f}%{ci}"


def signed_ci(value: float, low: float, high: float, digits: int = 1, scale: float = 1.0) -> str:
    """A signed number and its CI: ``+7.5 [+0.0, +15.0]`` (``scale`` 100 turns proportions into
    percentage points)."""
    if not _finite(value):
        return "n/a"
    text = f"{scale * value:+.{digits}f}"
    if _finite(low, high):
        text += f" [{scale * low:+.{digits}f}, {scale * high:+.{digits}f}]"
    return text


def pp_ci(diff: float, low: float, high: float) -> str:
    """A difference of proportions in percentage points with its CI."""
    return signed_ci(diff, low, high, 1, 100.0)


def plain_ci(value: float, low: float, high: float, digits: int = 3) -> str:
    """An unsigned number and its CI: ``0.851 [0.753, 0.932]``."""
    if not _finite(value):
        return "n/a"
    ci = f" [{low:.{digits}f}, {high:.{digits}f}]" if _finite(low, high) else ""
    return f"{value:.{digits}f}{ci}"


def sig(value: float) -> str:
    """A p- or q-value with two significant digits (``n/a`` when missing)."""
    return f"{value:.2g}" if _finite(value) else "n/a"


def layer_list(layers: Iterable[int]) -> str:
    """Sorted layers with consecutive runs joined: ``[1, 2, 3, 7]`` -> ``1-3, 7``."""
    runs: list[list[int]] = []
    for x in sorted({int(v) for v in layers}):
        if runs and x == runs[-1][-1] + 1:
            runs[-1].append(x)
        else:
            runs.append([x])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def table(rows: Sequence[dict[str, str]]) -> str:
    """A pipe table of already formatted cells (columns in the first row's order)."""
    return markdown_table(pd.DataFrame(rows, dtype=str), max_rows=None).rstrip("\n")
