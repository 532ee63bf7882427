"""The ablation verdict: each arm's mean, and its paired difference from the unablated warm
model."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.figures.marks import error_bars, sorted_unique
from interp.figures.tables import TableError, check_table, require_proportions
from interp.figures.theme import OKABE_ITO, REFERENCE_LINE, VARIANT_COLORS, apply

CONDITION_ORDER = ("neutral", "sad", "wrong belief", "sad + wrong belief")
UNITS = {
    "error": ("error rate (%)", "pp", 100.0),
    "agrees_with_user": ("agrees with user (%)", "pp", 100.0),
    "warmth": ("warmth (instrument units)", "instrument units", 1.0),
}


def arm_label(model: str, intervention: str) -> str:
    """``warm``, ``original``, ``warm, ablate:warmth`` ..."""
    return model if intervention in ("none", "", "nan") else f"{model}, {intervention}"


INTERVENTION_COLORS = ("#009E73", "#56B4E9", "#E69F00", "#000000", "#CC79A7", "#882255")
"""Arms with an intervention (yellow is left out: too faint on white at slide size)."""


def _arm_color(model: str, intervention: str, k: int) -> str:
    if intervention in ("none", "", "nan"):
        return VARIANT_COLORS.get(model, OKABE_ITO[k % len(OKABE_ITO)])
    if "random" in intervention:
        return "#999999"
    return INTERVENTION_COLORS[k % len(INTERVENTION_COLORS)]


def verdict_bars(
    df: pd.DataFrame,
    measure: str = "error",
    table: str = "verdict",
    title: str = "Does removing the direction restore reliability?",
) -> go.Figure:
    """Left: mean ``measure`` per condition for every arm (model x intervention), 95% CI bars.
    Right: each arm's paired within-item difference from the unablated warm model (95% CI);
    the original model's bar is the gap a full repair would close. ``df``: the verdict table
    (or sae_interventions, with ``table`` naming it)."""
    check_table(df, table)
    part = df[df["measure"].astype(str) == measure]
    if part.empty:
        raise TableError(
            f"{table}: no rows with measure {measure!r}; found "
            f"{sorted(map(str, df['measure'].unique()))}"
        )
    axis, diff_unit, scale = UNITS.get(measure, (measure, "units", 1.0))
    if scale == 100.0:
        require_proportions(part, ["mean", "ci_low", "ci_high"], table)
    part = part.assign(
        arm=[
            arm_label(str(m), str(i))
            for m, i in zip(part["model"], part["intervention"], strict=True)
        ]
    )
    conditions = sorted_unique(part["condition"], CONDITION_ORDER)
    ticks = [c.replace(" + ", " +<br>") for c in conditions]
    arms = part[["model", "intervention", "arm"]].drop_duplicates()
    arms = arms.assign(
        _o=[
            (0 if i == "none" else 1, m != "original", a)
            for m, i, a in arms.itertuples(index=False)
        ]
    ).sort_values("_o")
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.12,
        subplot_titles=["mean per arm", "paired difference vs unablated warm"],
    )
    n_interventions = 0
    for k, (model, intervention, arm, _) in enumerate(arms.itertuples(index=False)):
        rows = part[part["arm"] == arm].set_index("condition").reindex(conditions).reset_index()
        color = _arm_color(
            str(model), str(intervention), n_interventions if intervention != "none" else k
        )
        n_interventions += intervention not in ("none", "") and "random" not in str(intervention)
        fig.add_trace(
            go.Bar(
                x=ticks,
                y=rows["mean"] * scale,
                name=arm,
                legendgroup=arm,
                marker_color=color,
                error_y=error_bars(rows, "mean", "ci_low", "ci_high", scale),
                customdata=rows[["n_items"]].to_numpy(),
                hovertemplate=(
                    f"{arm}<br>%{{x}}<br>%{{y:.2f}}<br>items: %{{customdata[0]}}<extra></extra>"
                ),
            ),
            row=1,
            col=1,
        )
        if model == "warm" and intervention == "none":
            continue
        fig.add_trace(
            go.Bar(
                x=ticks,
                y=rows["diff_vs_warm"] * scale,
                name=arm,
                legendgroup=arm,
                showlegend=False,
                marker_color=color,
                error_y=error_bars(rows, "diff_vs_warm", "diff_low", "diff_high", scale),
                customdata=rows[["p_value"]].to_numpy(),
                hovertemplate=(
                    f"{arm}<br>%{{x}}<br>difference %{{y:+.2f}} {diff_unit}<br>p = "
                    "%{customdata[0]:.3g}<extra></extra>"
                ),
            ),
            row=1,
            col=2,
        )
    fig.add_hline(y=0, line=REFERENCE_LINE, row=1, col=2)
    fig.update_yaxes(title_text=axis, row=1, col=1)
    fig.update_yaxes(title_text=f"difference from warm ({diff_unit})", row=1, col=2)
    fig.update_layout(
        barmode="group",
        bargap=0.2,
        legend_title_text="arm (bars: 95% CI)",
        legend={"orientation": "h", "y": -0.28, "x": 0},
    )
    return apply(fig, title, height=700)
