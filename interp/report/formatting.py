"""Number formatting and truncation shared by the HTML, Markdown and LaTeX renderings."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

MAX_ROWS = 40


def format_value(value: object) -> str:
    """Floats to 3 significant decimals (integers as integers), NaN as an en dash."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        x = float(value)
        if not math.isfinite(x):
            return "–"
        if x.is_integer() and abs(x) < 1e6:
            return str(int(x))
        return f"{x:.3g}" if abs(x) < 1e-3 or abs(x) >= 1e4 else f"{x:.3f}"
    return "" if value is None else str(value)


def formatted(df: pd.DataFrame, max_rows: int | None = MAX_ROWS) -> tuple[pd.DataFrame, int]:
    """The first ``max_rows`` rows as strings, and how many rows were left out."""
    shown = df if max_rows is None else df.head(max_rows)
    text = (
        shown.apply(lambda col: col.map(format_value)).astype(str)
        if len(shown)
        else shown.astype(str)
    )
    return text, len(df) - len(shown)
