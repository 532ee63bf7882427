"""Shared plot marks: asymmetric error bars from CI columns and shaded CI / null bands."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from interp.figures.tables import has_values
from interp.figures.theme import band_fill


def error_bars(
    df: pd.DataFrame, mean: str, low: str, high: str, scale: float = 1.0
) -> dict[str, Any] | None:
    """Plotly ``error_y``/``error_x`` dict for ``[low, high]`` around ``mean`` (None if no CI)."""
    if low not in df.columns or high not in df.columns or not has_values(df[low]):
        return None
    m = pd.to_numeric(df[mean], errors="coerce").to_numpy(float) * scale
    lo = pd.to_numeric(df[low], errors="coerce").to_numpy(float) * scale
    hi = pd.to_numeric(df[high], errors="coerce").to_numpy(float) * scale
    return {
        "type": "data",
        "symmetric": False,
        "array": np.clip(hi - m, 0, None),
        "arrayminus": np.clip(m - lo, 0, None),
        "thickness": 2,
        "width": 5,
    }


def band(
    x: Any,
    low: Any,
    high: Any,
    color: str,
    name: str,
    *,
    legendgroup: str | None = None,
    showlegend: bool = False,
    alpha: float = 0.18,
) -> go.Scatter:
    """A filled band between ``low`` and ``high`` over ``x`` (one closed polygon; NaNs dropped)."""
    x = np.asarray(x, dtype=float)
    lo = np.asarray(low, dtype=float)
    hi = np.asarray(high, dtype=float)
    keep = np.isfinite(x) & np.isfinite(lo) & np.isfinite(hi)
    x, lo, hi = x[keep], lo[keep], hi[keep]
    fill = color if color.startswith("rgba") else band_fill(color, alpha)
    return go.Scatter(
        x=np.concatenate([x, x[::-1]]),
        y=np.concatenate([hi, lo[::-1]]),
        fill="toself",
        fillcolor=fill,
        line={"width": 0},
        mode="lines",
        hoverinfo="skip",
        name=name,
        legendgroup=legendgroup,
        showlegend=showlegend,
    )


def grid(n_panels: int, max_cols: int = 2) -> tuple[int, int]:
    """(rows, cols) of a facet grid: one row up to ``max_cols`` panels, then wrapped."""
    cols = min(max_cols, max(1, n_panels))
    return -(-n_panels // cols), cols


def sorted_unique(series: pd.Series, preferred: tuple[str, ...] = ()) -> list[str]:
    """Distinct values of a column, those in ``preferred`` first in that order, then sorted."""
    present = [str(v) for v in pd.unique(series.dropna().astype(str))]
    head = [p for p in preferred if p in present]
    return head + sorted(v for v in present if v not in head)
