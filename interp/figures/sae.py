"""SAE decomposition of a direction: its top latents by cosine and by attribution."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.figures.marks import sorted_unique
from interp.figures.tables import check_table
from interp.figures.theme import OKABE_ITO, apply
from interp.figures.verdict import verdict_bars


def _short(text: object, limit: int = 90) -> str:
    s = str(text) if pd.notna(text) else ""
    first = s.split(" | ")[0]
    return first if len(first) <= limit else first[: limit - 1] + "…"


def sae_decomposition(
    df: pd.DataFrame, top: int = 10, title: str = "SAE latents that make up each direction"
) -> go.Figure:
    """Horizontal bars of the ``top`` latents per direction (rank 1 at the top): left, cosine
    between the latent's decoder vector and the direction; right, attribution. Hover shows
    the latent's top examples. ``df``: the sae_decomposition table."""
    check_table(df, "sae_decomposition")
    directions = sorted_unique(df["direction"])
    fig = make_subplots(
        rows=len(directions),
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        vertical_spacing=0.12 / max(1, len(directions) - 1) if len(directions) > 1 else 0.0,
        subplot_titles=[t for d in directions for t in (f"{d}: cosine", f"{d}: attribution")],
    )
    for r, direction in enumerate(directions, start=1):
        rows = df[df["direction"].astype(str) == direction].sort_values("rank").head(top)
        labels = [
            f"#{int(k)} latent {lat}" for k, lat in zip(rows["rank"], rows["latent"], strict=True)
        ]
        hover = [_short(t, 200) for t in rows["top_examples"]]
        for c, (column, color) in enumerate(
            (("cosine", OKABE_ITO[0]), ("attribution", OKABE_ITO[1])), start=1
        ):
            fig.add_trace(
                go.Bar(
                    y=labels,
                    x=rows[column],
                    orientation="h",
                    marker_color=color,
                    showlegend=False,
                    customdata=hover,
                    hovertemplate=(
                        f"%{{y}}<br>{column} %{{x:.3f}}<br>%{{customdata}}<extra></extra>"
                    ),
                ),
                row=r,
                col=c,
            )
        fig.update_yaxes(autorange="reversed", row=r, col=1)
        fig.update_xaxes(title_text="cosine with direction", row=r, col=1)
        fig.update_xaxes(title_text="attribution (metric units)", row=r, col=2)
    return apply(fig, title, height=max(520, 110 + len(directions) * (60 + 38 * top)))


def sae_interventions(
    df: pd.DataFrame,
    measure: str = "error",
    title: str = "Ablating SAE latents: does reliability return?",
) -> go.Figure:
    """The verdict bars for SAE-latent interventions (the sae_interventions table)."""
    return verdict_bars(df, measure=measure, table="sae_interventions", title=title)
