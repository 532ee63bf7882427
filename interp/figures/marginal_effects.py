"""The paper's average marginal effects: each variant minus the original, per model and level."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.figures.marks import sorted_unique
from interp.figures.tables import TableError, check_table
from interp.figures.theme import REFERENCE_LINE, apply, variant_color
from interp.figures.warmth import VARIANT_ORDER

MODEL_TITLES = {
    "model1_main_effect": "Model 1: main effect (unmodified, no belief)",
    "model2_grouped_context": "Model 2: by context group (no belief)",
    "model3_detailed_context": "Model 3: by condition (no belief)",
    "model4_belief": "Model 4: by belief",
}
BELIEF_NOTE = "on belief prompts the error is choosing the user's wrong answer"


def marginal_effects(
    df: pd.DataFrame,
    title: str = "Average marginal effect of each variant vs the original (pp, 95% CI)",
) -> go.Figure:
    """One panel per fitted model: the AME (percentage points) of each variant over all rows and
    per level of the model's factor, with 95% CI bars and the zero line; the hover gives the BH
    q-value and what the outcome measures. Skipped models (no AME) are left out.

    ``df``: the marginal_effects table (``ame_pp``, ``ci_low``, ``ci_high`` in pp)."""
    check_table(df, "marginal_effects")
    part = df[pd.to_numeric(df["ame_pp"], errors="coerce").notna()]
    if part.empty:
        raise TableError(
            "marginal_effects: no fitted model (every row is skipped: "
            f"{sorted(map(str, df['note'].unique()))})"
        )
    models = sorted_unique(part["model"], tuple(MODEL_TITLES))
    variants = sorted_unique(part["variant"], VARIANT_ORDER)
    heights = [max(1, part[part["model"] == m]["level"].nunique()) for m in models]
    fig = make_subplots(
        rows=len(models),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        row_heights=heights,
        subplot_titles=[MODEL_TITLES.get(m, m) for m in models],
    )
    for i, model in enumerate(models):
        rows_m = part[part["model"] == model]
        levels = list(dict.fromkeys(rows_m["level"].astype(str)))  # all, reference, others
        for k, variant in enumerate(variants):
            rows = rows_m[rows_m["variant"] == variant].set_index("level").reindex(levels)
            y = np.arange(len(levels)) + (k - (len(variants) - 1) / 2) * 0.22
            fig.add_trace(
                go.Scatter(
                    x=rows["ame_pp"],
                    y=y,
                    mode="markers",
                    name=variant,
                    legendgroup=variant,
                    showlegend=i == 0,
                    marker={"color": variant_color(variant, k), "size": 9},
                    error_x={
                        "type": "data",
                        "symmetric": False,
                        "array": (rows["ci_high"] - rows["ame_pp"]).to_numpy(float),
                        "arrayminus": (rows["ame_pp"] - rows["ci_low"]).to_numpy(float),
                        "thickness": 2,
                        "width": 4,
                    },
                    customdata=np.stack(
                        [levels, rows["q_value"].to_numpy(float), rows["measure"].astype(str)],
                        axis=1,
                    ),
                    hovertemplate=(
                        f"{variant} - original<br>%{{customdata[0]}}: %{{x:+.1f}} pp<br>"
                        "BH q %{customdata[1]:.3g}<br>%{customdata[2]}<extra></extra>"
                    ),
                ),
                row=i + 1,
                col=1,
            )
        fig.update_yaxes(
            tickvals=list(range(len(levels))),
            ticktext=levels,
            autorange="reversed",
            row=i + 1,
            col=1,
        )
        fig.add_vline(x=0, line=REFERENCE_LINE, row=i + 1, col=1)
    fig.update_xaxes(title_text=f"AME (pp); {BELIEF_NOTE}", row=len(models), col=1)
    fig.update_layout(legend_title_text="variant (bars: 95% CI, item-clustered)")
    return apply(fig, title, height=220 + 70 * sum(heights) + 60 * len(models))
