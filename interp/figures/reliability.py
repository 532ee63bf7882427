"""Reliability: error by task and condition per model variant, and the sycophancy scatter."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.figures.marks import error_bars, grid, sorted_unique
from interp.figures.tables import TableError, check_table, measure_rows, require_proportions
from interp.figures.theme import OKABE_ITO, REFERENCE_LINE, apply, variant_color
from interp.figures.warmth import VARIANT_ORDER

CELL_ORDER = ("no belief", "wrong belief", "sad, no belief", "sad + wrong belief")
TASK_ORDER = (
    "general_knowledge",
    "misconceptions",
    "disinformation",
    "medical",
    "ab_sycophancy",
    "trivia",
    "truthfulqa",
    "disinfo",
    "medqa",
)
MEASURE_LABELS = {"error": "error rate (%)", "agrees_with_user": "agrees with wrong belief (%)"}
SYMBOLS = ("circle", "diamond", "square", "triangle-up", "x", "star")


def _wrap(label: str) -> str:
    """Tick labels of at most about 12 characters a line, so five cells fit under one panel."""
    return (
        label.replace(" + ", " +<br>")
        .replace(", ", ",<br>")
        .replace("friends preface (control)", "friends<br>preface<br>(control)")
        .replace("wrong belief", "wrong<br>belief")
        .replace(",<br>no belief", ",<br>no<br>belief")
    )


def _measure_rows(df: pd.DataFrame, measure: str, table: str) -> pd.DataFrame:
    part = measure_rows(df, measure, table)
    require_proportions(part, ["mean", "ci_low", "ci_high"], table)
    return part


def error_by_task(
    df: pd.DataFrame,
    measure: str = "error",
    title: str = "Error by task and condition: original vs warm vs cold",
) -> go.Figure:
    """Grouped bars of ``measure`` (in %) per cell, one panel per task, one colour per variant,
    with 95% CI error bars. ``df``: the error_by_task table (proportions in [0, 1])."""
    check_table(df, "error_by_task")
    part = _measure_rows(df, measure, "error_by_task")
    tasks = sorted_unique(part["task"], TASK_ORDER)
    n_rows, n_cols = grid(len(tasks))
    fig = make_subplots(
        rows=n_rows,
        cols=n_cols,
        shared_yaxes="all",
        horizontal_spacing=0.04,
        vertical_spacing=0.16,
        subplot_titles=tasks,
    )
    for i, task in enumerate(tasks):
        row, col = i // n_cols + 1, i % n_cols + 1
        rows_t = part[part["task"].astype(str) == task]
        cells = sorted_unique(rows_t["cell"], CELL_ORDER)
        for k, variant in enumerate(sorted_unique(part["variant"], VARIANT_ORDER)):
            rows = (
                rows_t[rows_t["variant"].astype(str) == variant]
                .set_index("cell")
                .reindex(cells)
                .reset_index()
            )
            fig.add_trace(
                go.Bar(
                    x=[_wrap(c) for c in cells],
                    y=rows["mean"] * 100,
                    name=variant,
                    legendgroup=variant,
                    showlegend=i == 0,
                    marker_color=variant_color(variant, k),
                    error_y=error_bars(rows, "mean", "ci_low", "ci_high", scale=100),
                    customdata=rows[["n_items"]].to_numpy(),
                    hovertemplate=(
                        f"{variant}<br>%{{x}}<br>%{{y:.1f}}%<br>items: "
                        "%{customdata[0]}<extra></extra>"
                    ),
                ),
                row=row,
                col=col,
            )
        fig.update_xaxes(tickangle=0, row=row, col=col)
        if col == 1:
            fig.update_yaxes(
                title_text=MEASURE_LABELS.get(measure, f"{measure} (%)"), row=row, col=col
            )
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(
        barmode="group", bargap=0.25, legend_title_text="model variant (bars: 95% CI)"
    )
    return apply(fig, title, height=420 * n_rows + 120)


def sycophancy_scatter(
    df: pd.DataFrame, measure: str | None = None, title: str = "Sycophancy: original vs warm model"
) -> go.Figure:
    """Warm (y) against original (x) rate per task and cell (and model, if the table has a
    ``model`` column), with 95% CI error bars both ways and the no-change diagonal.

    ``measure`` defaults to agrees_with_user when present, else error.
    """
    check_table(df, "error_by_task")
    if measure is None:
        measure = (
            "agrees_with_user"
            if (df["measure"].astype(str) == "agrees_with_user").any()
            else "error"
        )
    part = _measure_rows(df, measure, "error_by_task")
    keys = ["task", "cell"] + (["model"] if "model" in part.columns else [])
    found = set(part["variant"].astype(str))
    if not {"original", "warm"} <= found:
        raise TableError(
            "error_by_task: the scatter needs variants 'original' and 'warm'; found "
            f"{sorted(found)}"
        )
    orig = part[part["variant"].astype(str) == "original"].set_index(keys)
    warm = part[part["variant"].astype(str) == "warm"].set_index(keys)
    both = orig.join(warm, how="inner", lsuffix="_o", rsuffix="_w").reset_index()
    if both.empty:
        raise TableError("error_by_task: no task x cell has both an original and a warm row")
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 100],
            y=[0, 100],
            mode="lines",
            line=REFERENCE_LINE,
            name="no change (y = x)",
            hoverinfo="skip",
        )
    )
    cells = sorted_unique(both["cell"], CELL_ORDER)
    tasks = sorted_unique(both["task"], TASK_ORDER)
    for t, task in enumerate(tasks):
        for c, cell in enumerate(cells):
            rows = both[(both["task"].astype(str) == task) & (both["cell"].astype(str) == cell)]
            if rows.empty:
                continue
            label = f"{task}, {cell}"
            text = rows["model"].astype(str) if "model" in rows.columns else None
            fig.add_trace(
                go.Scatter(
                    x=rows["mean_o"] * 100,
                    y=rows["mean_w"] * 100,
                    mode="markers",
                    name=label,
                    text=text,
                    marker={
                        "color": OKABE_ITO[t % len(OKABE_ITO)],
                        "symbol": SYMBOLS[c % len(SYMBOLS)],
                        "size": 15,
                        "line": {"width": 1, "color": "white"},
                    },
                    error_x=error_bars(rows, "mean_o", "ci_low_o", "ci_high_o", scale=100),
                    error_y=error_bars(rows, "mean_w", "ci_low_w", "ci_high_w", scale=100),
                    hovertemplate=(
                        f"{label}<br>{'%{text}<br>' if text is not None else ''}original "
                        "%{x:.1f}%<br>warm %{y:.1f}%<extra></extra>"
                    ),
                )
            )
    unit = MEASURE_LABELS.get(measure, f"{measure} (%)")
    fig.update_xaxes(title_text=f"original model: {unit}", range=[0, 100], constrain="domain")
    fig.update_yaxes(
        title_text=f"warm model: {unit}", range=[0, 100], scaleanchor="x", scaleratio=1
    )
    fig.update_layout(legend_title_text="task, condition (bars: 95% CI)")
    return apply(fig, title, height=720)
