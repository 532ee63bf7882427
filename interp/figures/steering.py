"""Steering dose-response: each metric against the steering strength, with the null band."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.figures.marks import band, error_bars, sorted_unique
from interp.figures.tables import check_table, has_values, require_proportions
from interp.figures.theme import NULL_BAND_COLOR, OKABE_ITO, REFERENCE_LINE, apply

METRIC_ORDER = (
    "p_agree",
    "error",
    "warmth",
    "kl_continuation",
    "kl_first_token",
    "kl",
    "heldout_loss",
)
METRIC_AXES = {
    "p_agree": ("P(agree with user)", "probability", 1.0),
    "error": ("error rate", "%", 100.0),
    "warmth": ("warmth", "instrument units", 1.0),
    "kl_continuation": ("KL to unsteered, continuation", "nats/token", 1.0),
    "kl_first_token": ("KL to unsteered, first answer token", "nats", 1.0),
    "kl": ("KL to unsteered", "nats/token", 1.0),
    "heldout_loss": ("held-out loss", "nats/token", 1.0),
}


def dose_response(
    df: pd.DataFrame,
    layers: list[int] | None = None,
    max_cols: int = 3,
    title: str = "Steering dose-response (grey: random directions of equal norm)",
) -> go.Figure:
    """One panel per metric: mean (95% CI bars) against alpha per direction x layer, over the
    grey band of random directions (2.5th-97.5th percentile) where the table has it.

    ``df``: the steering_sweep table; ``layers`` keeps only those layers. alpha is in units of
    the mean residual-stream norm at the steered layer; error is shown in %.
    """
    check_table(df, "steering_sweep")
    if layers is not None:
        df = df[df["layer"].isin(layers)]
        check_table(df, "steering_sweep")
    for metric in ("p_agree", "error"):
        require_proportions(
            df[df["metric"].astype(str) == metric], ["mean", "ci_low", "ci_high"], "steering_sweep"
        )
    metrics = sorted_unique(df["metric"], METRIC_ORDER)
    n_cols = min(max_cols, len(metrics))
    n_rows = math.ceil(len(metrics) / n_cols)
    fig = make_subplots(rows=n_rows, cols=n_cols, horizontal_spacing=0.1, vertical_spacing=0.16)
    combos = (
        df[["direction", "layer"]]
        .drop_duplicates()
        .sort_values(["direction", "layer"])
        .itertuples(index=False)
    )
    combos = list(combos)
    null_shown = False
    for i, metric in enumerate(metrics):
        r, c = i // n_cols + 1, i % n_cols + 1
        label, unit, scale = METRIC_AXES.get(metric, (metric, "units", 1.0))
        part = df[df["metric"].astype(str) == metric]
        for k, (direction, layer) in enumerate(combos):
            rows = part[(part["direction"] == direction) & (part["layer"] == layer)].sort_values(
                "alpha"
            )
            if rows.empty:
                continue
            name = "unsteered" if str(direction) == "none" else f"{direction} @ layer {layer}"
            if has_values(rows["null_low"]):
                fig.add_trace(null_marks(rows, scale, showlegend=not null_shown), row=r, col=c)
                null_shown = True
            color = OKABE_ITO[k % len(OKABE_ITO)]
            fig.add_trace(
                go.Scatter(
                    x=rows["alpha"],
                    y=rows["mean"] * scale,
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    showlegend=i == 0,
                    line={"color": color},
                    marker={"color": color},
                    error_y=error_bars(rows, "mean", "ci_low", "ci_high", scale=scale),
                    hovertemplate=f"{name}<br>alpha %{{x}}<br>{metric} %{{y:.3f}}<extra></extra>",
                ),
                row=r,
                col=c,
            )
        fig.add_vline(x=0, line=REFERENCE_LINE, row=r, col=c)
        fig.update_yaxes(title_text=f"{label} ({unit})", row=r, col=c)
        fig.update_xaxes(title_text="alpha (× residual norm)", row=r, col=c)
    fig.update_layout(legend_title_text="direction (bars: 95% CI)")
    if len(metrics) < n_rows * n_cols:  # put the legend in the empty last slot
        fig.update_layout(
            legend={
                "x": (len(metrics) % n_cols) / n_cols + 0.03,
                "y": 0.4 / n_rows,
                "xanchor": "left",
                "yanchor": "top",
            }
        )
    return apply(fig, title, height=max(560, 430 * n_rows))


def null_marks(rows: pd.DataFrame, scale: float, *, showlegend: bool) -> go.Scatter:
    """The random-direction null where it was measured: a band when it was measured at every
    alpha of the curve, else a vertical 95% range at each measured alpha (never drawn across
    alphas where no random direction was run)."""
    name = "random directions (95% range)"
    measured = rows["null_low"].notna() & rows["null_high"].notna()
    if measured.all():
        return band(
            rows["alpha"],
            rows["null_low"] * scale,
            rows["null_high"] * scale,
            NULL_BAND_COLOR,
            name,
            legendgroup="null",
            showlegend=showlegend,
        )
    part = rows[measured]
    mid = (part["null_low"] + part["null_high"]) / 2
    return go.Scatter(
        x=part["alpha"],
        y=mid * scale,
        mode="markers",
        name=name,
        legendgroup="null",
        showlegend=showlegend,
        marker={
            "color": NULL_BAND_COLOR,
            "size": 12,
            "symbol": "line-ns-open",
            "line": {"width": 6, "color": NULL_BAND_COLOR},
        },
        error_y={
            "type": "data",
            "symmetric": False,
            "thickness": 6,
            "width": 0,
            "color": NULL_BAND_COLOR,
            "array": ((part["null_high"] - mid) * scale).to_numpy(),
            "arrayminus": ((mid - part["null_low"]) * scale).to_numpy(),
        },
        hoverinfo="skip",
    )
