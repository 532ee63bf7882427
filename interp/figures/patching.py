"""Activation patching: fraction of the warm-minus-original gap recovered, by layer."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from interp.figures.marks import band, sorted_unique
from interp.figures.tables import check_table, has_values
from interp.figures.theme import OKABE_ITO, REFERENCE_LINE, apply

DASH = {"last": "solid", "all": "dash"}
POSITION_LABELS = {"last": "last token", "all": "all tokens"}


def patching_recovery(
    df: pd.DataFrame, title: str = "Activation patching: gap recovered by layer"
) -> go.Figure:
    """Recovered fraction (0 = none of the gap closed, 1 = all of it) per layer, one line per
    patch direction x positions, 95% CI band. ``df``: the patching table."""
    check_table(df, "patching")
    fig = go.Figure()
    fig.add_hline(y=0, line=REFERENCE_LINE)
    fig.add_hline(
        y=1, line=REFERENCE_LINE, annotation_text="full recovery", annotation_position="top left"
    )
    for k, patch in enumerate(sorted_unique(df["patch"], ("original->warm", "warm->original"))):
        color = OKABE_ITO[k % len(OKABE_ITO)]
        for positions in sorted_unique(df["positions"], ("last", "all")):
            rows = df[
                (df["patch"].astype(str) == patch) & (df["positions"].astype(str) == positions)
            ].sort_values("layer")
            if rows.empty:
                continue
            name = f"{patch.replace('->', ' → ')}, {POSITION_LABELS.get(positions, positions)}"
            if has_values(rows["ci_low"]):
                fig.add_trace(
                    band(
                        rows["layer"],
                        rows["ci_low"],
                        rows["ci_high"],
                        color,
                        f"{name} 95% CI",
                        legendgroup=name,
                    )
                )
            fig.add_trace(
                go.Scatter(
                    x=rows["layer"],
                    y=rows["recovered"],
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    line={"color": color, "dash": DASH.get(positions, "dot")},
                    marker={"color": color},
                    customdata=rows[["n_items"]].to_numpy(),
                    hovertemplate=(
                        f"{name}<br>layer %{{x}}<br>recovered %{{y:.2f}}<br>items: "
                        "%{customdata[0]}<extra></extra>"
                    ),
                )
            )
    fig.update_xaxes(title_text="patched layer index (output of block L)")
    fig.update_yaxes(title_text="fraction of gap recovered (0-1)")
    fig.update_layout(legend_title_text="patch (band: 95% CI)")
    return apply(fig, title, height=640)
