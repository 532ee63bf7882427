"""Warmth over fine-tuning epochs, one panel per warmth instrument."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.figures.marks import band, sorted_unique
from interp.figures.tables import check_table, has_values
from interp.figures.theme import apply, variant_color

VARIANT_ORDER = ("original", "warm", "cold", "warm-sysprompt")
INSTRUMENT_LABELS = {
    "embedding": "embedding classifier (P(warm))",
    "sociot": "SocioT (log-lik. difference)",
    "lexical": "lexical markers (per reply)",
}


def warmth_by_epoch(
    df: pd.DataFrame, title: str = "Warmth of replies over fine-tuning"
) -> go.Figure:
    """Mean warmth per epoch (x: epoch, 0 = original model), one line per variant, 95% CI band.

    ``df``: the warmth_by_epoch table (variant, epoch, instrument, mean, ci_low, ci_high, n).
    Instruments have their own scales, so each gets its own panel and y axis.
    """
    check_table(df, "warmth_by_epoch")
    instruments = sorted_unique(df["instrument"], ("embedding", "sociot", "lexical"))
    fig = make_subplots(
        rows=1,
        cols=len(instruments),
        horizontal_spacing=0.09,
        subplot_titles=[INSTRUMENT_LABELS.get(i, i) for i in instruments],
    )
    for col, instrument in enumerate(instruments, start=1):
        part = df[df["instrument"].astype(str) == instrument]
        # the original model (often one point at epoch 0) is drawn last so nothing hides it
        variants = sorted_unique(part["variant"], VARIANT_ORDER)
        variants = [v for v in variants if v != "original"] + [
            v for v in variants if v == "original"
        ]
        for k, variant in enumerate(variants):
            rows = part[part["variant"].astype(str) == variant].sort_values("epoch")
            color = variant_color(variant, k)
            if has_values(rows["ci_low"]):
                fig.add_trace(
                    band(
                        rows["epoch"],
                        rows["ci_low"],
                        rows["ci_high"],
                        color,
                        f"{variant} 95% CI",
                        legendgroup=variant,
                    ),
                    row=1,
                    col=col,
                )
            fig.add_trace(
                go.Scatter(
                    x=rows["epoch"],
                    y=rows["mean"],
                    mode="lines+markers",
                    name=variant,
                    legendgroup=variant,
                    legendrank=1000
                    + (
                        VARIANT_ORDER.index(variant)
                        if variant in VARIANT_ORDER
                        else len(VARIANT_ORDER) + k
                    ),
                    showlegend=col == 1,
                    line={"color": color},
                    marker={
                        "color": color,
                        "size": 14 if variant == "original" else 10,
                        "symbol": "diamond" if variant == "original" else "circle",
                    },
                    customdata=rows[["n"]].to_numpy(),
                    hovertemplate=(
                        f"{variant}<br>epoch %{{x}}<br>warmth %{{y:.3f}}<br>n = "
                        "%{customdata[0]}<extra></extra>"
                    ),
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="fine-tuning epoch", row=1, col=col)
    fig.update_yaxes(title_text="mean warmth (instrument units)", row=1, col=1)
    fig.update_layout(legend_title_text="model variant (band: 95% CI)")
    return apply(fig, title, height=620)
