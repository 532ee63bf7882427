"""Linear-probe AUROC by layer, with its 95% CI, the shuffled-label control and chance."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from interp.figures.marks import band, sorted_unique
from interp.figures.tables import check_table, has_values
from interp.figures.theme import OKABE_ITO, REFERENCE_LINE, apply

DASHES = ("solid", "dash", "dot", "dashdot")


def probe_auroc(df: pd.DataFrame, title: str = "Linear probe AUROC by layer") -> go.Figure:
    """AUROC per layer, one line per probe x site with a 95% CI band; thin dotted lines show
    the same probe on shuffled labels; the grey line marks chance (0.5).
    ``df``: the probe_auroc table."""
    check_table(df, "probe_auroc")
    fig = go.Figure()
    fig.add_hline(
        y=0.5, line=REFERENCE_LINE, annotation_text="chance", annotation_position="bottom right"
    )
    sites = sorted_unique(
        df["site"], ("resid_post", "resid_mid", "resid_pre", "attn_out", "mlp_out")
    )
    for k, probe in enumerate(sorted_unique(df["probe"], ("sycophancy", "warm_vs_original"))):
        color = OKABE_ITO[k % len(OKABE_ITO)]
        for s, site in enumerate(sites):
            rows = df[
                (df["probe"].astype(str) == probe) & (df["site"].astype(str) == site)
            ].sort_values("layer")
            if rows.empty:
                continue
            name = probe if len(sites) == 1 else f"{probe} ({site})"
            if has_values(rows["auroc_low"]):
                fig.add_trace(
                    band(
                        rows["layer"],
                        rows["auroc_low"],
                        rows["auroc_high"],
                        color,
                        f"{name} 95% CI",
                        legendgroup=name,
                    )
                )
            fig.add_trace(
                go.Scatter(
                    x=rows["layer"],
                    y=rows["auroc"],
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    line={"color": color, "dash": DASHES[s % len(DASHES)]},
                    marker={"color": color},
                    customdata=rows[["accuracy", "n"]].to_numpy(),
                    hovertemplate=(
                        f"{name}<br>layer %{{x}}<br>AUROC %{{y:.3f}}<br>accuracy "
                        "%{customdata[0]:.3f}<br>n = %{customdata[1]}<extra></extra>"
                    ),
                )
            )
            if has_values(rows["shuffled_auroc"]):
                fig.add_trace(
                    go.Scatter(
                        x=rows["layer"],
                        y=rows["shuffled_auroc"],
                        mode="lines",
                        name=f"{name}, shuffled labels",
                        legendgroup=name,
                        line={"color": color, "width": 1.5, "dash": "dot"},
                        opacity=0.8,
                        hovertemplate=(
                            f"{name} shuffled<br>layer %{{x}}<br>AUROC %{{y:.3f}}<extra></extra>"
                        ),
                    )
                )
    fig.update_xaxes(title_text="layer index (output of block L)")
    fig.update_yaxes(title_text="AUROC (held-out folds)", range=[0.3, 1.02])
    fig.update_layout(legend_title_text="probe (band: 95% CI)")
    return apply(fig, title, height=640)
