"""Directions: cosine between direction definitions by layer, and split-half stability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.figures.marks import band, error_bars, sorted_unique
from interp.figures.tables import check_table, has_values
from interp.figures.theme import NULL_BAND_COLOR, OKABE_ITO, TICK_FONT_PX, apply

MAX_ANNOTATED_CELLS = 160


def cosine_heatmap(
    df: pd.DataFrame, title: str = "Cosine between direction definitions by layer"
) -> go.Figure:
    """Heatmap of cosine (colour, -1 to 1) for every pair of definitions (rows) at every layer
    (columns). ``df``: the direction_cosines table (layer, a, b, cosine); a pair and its mirror
    (b, a) are one row. Cell values are printed when the grid is small enough to read."""
    check_table(df, "direction_cosines")
    a, b = df["a"].astype(str).to_numpy(), df["b"].astype(str).to_numpy()
    d = df.assign(pair=[f"{min(x, y)} · {max(x, y)}" for x, y in zip(a, b, strict=True)])[a != b]
    grid = d.pivot_table(
        index="pair", columns="layer", values="cosine", aggfunc="mean"
    ).sort_index()
    layers = [int(v) if float(v).is_integer() else v for v in grid.columns]
    z = grid.to_numpy(float)
    show_text = z.size <= MAX_ANNOTATED_CELLS
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(v) for v in layers],
            y=list(grid.index),
            zmin=-1,
            zmax=1,
            colorscale="RdBu_r",
            colorbar={
                "title": {"text": "cosine", "side": "right"},
                "tickfont": {"size": TICK_FONT_PX},
            },
            text=np.round(z, 2) if show_text else None,
            texttemplate="%{text}" if show_text else None,
            textfont={"size": 14},
            xgap=1,
            ygap=1,
            hovertemplate="%{y}<br>layer %{x}<br>cosine %{z:.3f}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="layer index (output of block L)", type="category", showgrid=False)
    fig.update_yaxes(
        title_text="pair of direction definitions", showgrid=False, autorange="reversed"
    )
    return apply(fig, title, height=max(420, 160 + 55 * len(grid.index)))


def stability(
    df: pd.DataFrame, title: str = "Split-half stability of each direction by layer"
) -> go.Figure:
    """Top: split-half cosine per layer (95% CI bars) per direction, with the random-direction
    null (grey band from its mean to its 97.5th percentile). Bottom: relative norm per layer.
    ``df``: the direction_stability table."""
    check_table(df, "direction_stability")
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.65, 0.35]
    )
    directions = sorted_unique(df["direction"])
    null = (
        df.groupby("layer")[["null_cosine", "null_high"]].max().reset_index().sort_values("layer")
    )
    if has_values(null["null_high"]):
        fig.add_trace(
            band(
                null["layer"],
                null["null_cosine"],
                null["null_high"],
                NULL_BAND_COLOR,
                "random directions (mean to 97.5th pct)",
                showlegend=True,
            ),
            row=1,
            col=1,
        )
    for k, direction in enumerate(directions):
        rows = df[df["direction"].astype(str) == direction].sort_values("layer")
        color = OKABE_ITO[k % len(OKABE_ITO)]
        fig.add_trace(
            go.Scatter(
                x=rows["layer"],
                y=rows["cosine"],
                mode="lines+markers",
                name=direction,
                legendgroup=direction,
                line={"color": color},
                marker={"color": color},
                error_y=error_bars(rows, "cosine", "ci_low", "ci_high"),
                hovertemplate=(
                    f"{direction}<br>layer %{{x}}<br>split-half cosine %{{y:.3f}}<extra></extra>"
                ),
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=rows["layer"],
                y=rows["relative_norm"],
                mode="lines+markers",
                name=direction,
                legendgroup=direction,
                showlegend=False,
                line={"color": color, "dash": "dash"},
                marker={"color": color},
                hovertemplate=(
                    f"{direction}<br>layer %{{x}}<br>relative norm %{{y:.3f}}<extra></extra>"
                ),
            ),
            row=2,
            col=1,
        )
    fig.update_yaxes(
        title_text="split-half cosine",
        range=[min(-0.05, float(np.nanmin(df["ci_low"].to_numpy(float), initial=0))), 1.05],
        row=1,
        col=1,
    )
    fig.update_yaxes(
        title_text="relative norm<br>(‖v‖ / mean ‖resid‖)", rangemode="tozero", row=2, col=1
    )
    fig.update_xaxes(title_text="layer index (output of block L)", row=2, col=1)
    fig.update_layout(legend_title_text="direction (bars: 95% CI)")
    return apply(fig, title, height=760)
