"""The verdict protocol's figures (``interp verdict``), one per table it writes:

- :func:`gap_figure` (``verdict_gap``): warm minus original and cold minus original per cell,
  pooled and per task, on the derivation and the evaluation split, with 95% CIs: the gap the
  verdict sets out to explain, and whether there is one;
- :func:`null_figure` (``verdict_null``): per measure and cell, the target arm's change from the
  unedited warm model as a marker against the range and median of the matched random-direction
  null, labelled with its percentile there;
- :func:`damage_figure` (``verdict_damage``): each arm's held-out loss increase and continuation
  KL with 95% CIs, beside the null's range (the random directions drawn as grey points).

On belief prompts the forced-choice error is choosing the user's wrong answer; the figures say
so. The old single-table ablation verdict (step 12) is :mod:`interp.figures.verdict`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.figures.marks import error_bars, sorted_unique
from interp.figures.tables import TableError, check_table, measure_rows, require_proportions
from interp.figures.theme import OKABE_ITO, REFERENCE_LINE, VARIANT_COLORS, apply

CELLS = ("neutral", "sad", "wrong belief", "sad + wrong belief")
SPLITS = ("derivation", "evaluation")
CONTRASTS = ("warm - original", "cold - original")
POOLED = "all"
TASK_COLORS = {
    "general_knowledge": OKABE_ITO[0],
    "misconceptions": OKABE_ITO[2],
    "disinformation": OKABE_ITO[3],
    "medical": OKABE_ITO[4],
}
NULL_GREY = "#8C8C8C"
BELIEF_NOTE = "on belief cells, error = chose the user's wrong answer"

MEASURES: dict[str, tuple[str, float]] = {
    "error": ("error (pp)", 100.0),
    "agrees_with_user": ("agrees with user (pp)", 100.0),
    "warmth": ("warmth (instrument units)", 1.0),
    "kl_continuation": ("KL over continuation (nats)", 1.0),
    "heldout_loss_increase": ("held-out loss increase (nats)", 1.0),
}
"""Measure -> (axis title, scale from the table's units to the axis's)."""
MEASURE_ORDER = tuple(MEASURES)
DAMAGE_MEASURES = ("heldout_loss_increase", "kl_continuation")


def _tick(cell: str, narrow: bool = False) -> str:
    return cell.replace(" + ", " +<br>").replace(
        "wrong belief", "wrong<br>belief" if narrow else "wrong belief"
    )


def _task_label(task: str) -> str:
    return "pooled (all tasks)" if task == POOLED else task.replace("_", " ")


def _null_range(
    xs: list[float | None] | list[float],
    ys: list[float | None] | list[str | None],
    *,
    width: int,
    showlegend: bool,
) -> go.Scatter:
    """Thick grey segments (``None`` separates them): each null's range from min to max."""
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line={"color": NULL_GREY, "width": width},
        opacity=0.45,
        name="null range (random directions)",
        legendgroup="null",
        showlegend=showlegend,
        hoverinfo="skip",
    )


def gap_figure(
    gap: pd.DataFrame,
    measure: str = "error",
    title: str = "The gap to explain: fine-tuned minus original, per cell",
) -> go.Figure:
    """A grid of panels, rows the splits (derivation, evaluation) and columns the contrasts
    (warm - original, cold - original): per cell the paired gap in ``measure`` (pp) with its
    95% CI, pooled over tasks (black, larger) and per task (coloured), side by side. One trace
    per panel and task; hover gives n items, p and q."""
    check_table(gap, "verdict_gap")
    part = measure_rows(gap, measure, "verdict_gap")
    axis, scale = MEASURES.get(measure, (measure, 1.0))
    if scale == 100.0:
        require_proportions(part, ["mean", "ci_low", "ci_high"], "verdict_gap")
    splits = sorted_unique(part["split"], SPLITS)
    contrasts = sorted_unique(part["contrast"], CONTRASTS)
    cells = sorted_unique(part["condition"], CELLS)
    tasks = sorted_unique(part["task"], (POOLED, *TASK_COLORS))
    fig = make_subplots(
        rows=len(splits),
        cols=len(contrasts),
        horizontal_spacing=0.06,
        vertical_spacing=0.12,
        subplot_titles=[f"{c}, {s} split" for s in splits for c in contrasts],
    )
    width = 0.8 / max(1, len(tasks))
    offsets = {t: (k - (len(tasks) - 1) / 2) * width for k, t in enumerate(tasks)}
    for r, split in enumerate(splits, start=1):
        for c, contrast in enumerate(contrasts, start=1):
            panel = part[(part["split"] == split) & (part["contrast"] == contrast)]
            for k, task in enumerate(tasks):
                rows = panel[panel["task"] == task].set_index("condition").reindex(cells)
                pooled = task == POOLED
                color = "#000000" if pooled else TASK_COLORS.get(task, OKABE_ITO[5 + k % 3])
                fig.add_trace(
                    go.Scatter(
                        x=np.arange(len(cells)) + offsets[task],
                        y=rows["gap"] * scale,
                        mode="markers",
                        name=_task_label(task),
                        legendgroup=task,
                        showlegend=r == 1 and c == 1,
                        marker={
                            "color": color,
                            "size": 13 if pooled else 9,
                            "symbol": "diamond" if pooled else "circle",
                        },
                        error_y={
                            **(error_bars(rows, "gap", "gap_low", "gap_high", scale) or {}),
                            "color": color,
                            "thickness": 2.5 if pooled else 1.5,
                        },
                        customdata=rows[["n_items", "p_value", "q_value"]].to_numpy(),
                        text=[cell for cell in cells],
                        hovertemplate=(
                            f"{contrast}, {split}<br>%{{text}}, {_task_label(task)}<br>"
                            "gap %{y:+.1f} pp<br>items: %{customdata[0]}<br>"
                            "p = %{customdata[1]:.3g}, q = %{customdata[2]:.3g}<extra></extra>"
                        ),
                    ),
                    row=r,
                    col=c,
                )
            fig.add_hline(y=0, line=REFERENCE_LINE, row=r, col=c)  # type: ignore[arg-type]
    fig.update_xaxes(
        tickvals=list(range(len(cells))),
        ticktext=[_tick(cell) for cell in cells],
        range=[-0.55, len(cells) - 0.45],
    )
    # one y range for every panel, so that the panels compare (set here: plotly's shared axes
    # lose their autorange in a grid with both axes shared)
    fig.update_yaxes(range=_padded_range(part[["gap", "gap_low", "gap_high"]] * scale))
    for r in range(1, len(splits) + 1):
        fig.update_yaxes(title_text=f"gap in {axis}", row=r, col=1)
    fig.update_layout(
        legend_title_text="task (bars: 95% CI)",
        legend={"orientation": "h", "y": -0.1, "x": 0, "yanchor": "top"},
        margin={"b": 140, "t": 130},
    )
    fig.update_xaxes(zeroline=False, showgrid=False)
    return apply(
        fig, _with_note(title, f"paired within item; {BELIEF_NOTE}"), height=420 * len(splits) + 180
    )


def _with_note(title: str, note: str) -> str:
    """A title with a smaller second line."""
    return f"{title}<br><span style='font-size:15px;color:#555555'>{note}</span>"


def _padded_range(values: pd.DataFrame, pad: float = 0.06) -> list[float]:
    """``[low, high]`` over every finite value (zero included), padded by ``pad`` of the span."""
    v = pd.to_numeric(values.stack(), errors="coerce").to_numpy(float)
    v = np.append(v[np.isfinite(v)], 0.0)
    lo, hi = float(v.min()), float(v.max())
    span = (hi - lo) or 1.0
    return [lo - pad * span, hi + pad * span]


def null_figure(
    null: pd.DataFrame,
    title: str = "Removing the direction against a matched random null",
) -> go.Figure:
    """One panel per measure: per cell, the null's range (grey bar, min to max over the random
    directions) and median (grey tick), and each target's change from the unedited warm model
    (a marker labelled with its percentile in the null). Damage measures (KL, held-out loss)
    are the arm's value, not a change, and sit in the cell ``any``. Per panel and target three
    traces: null range, null median, target."""
    check_table(null, "verdict_null")
    measures = sorted_unique(null["measure"], MEASURE_ORDER)
    targets = sorted_unique(null["target"])
    cells_of = {m: sorted_unique(null[null["measure"] == m]["condition"], CELLS) for m in measures}
    widths = [max(len(cells_of[m]), 1.4) for m in measures]
    fig = make_subplots(
        rows=1,
        cols=len(measures),
        column_widths=widths,
        horizontal_spacing=0.07,
        subplot_titles=[_panel_title(m) for m in measures],
    )
    step = 0.6 / max(1, len(targets))
    for c, measure in enumerate(measures, start=1):
        _, scale = MEASURES.get(measure, (measure, 1.0))
        cells = cells_of[measure]
        for k, target in enumerate(targets):
            rows = (
                null[(null["measure"] == measure) & (null["target"] == target)]
                .set_index("condition")
                .reindex(cells)
            )
            x = np.arange(len(cells)) + (k - (len(targets) - 1) / 2) * step
            first = c == 1 and k == 0
            xs, ys = [], []
            for xi, lo, hi in zip(
                x, rows["null_min"] * scale, rows["null_max"] * scale, strict=True
            ):
                xs += [xi, xi, None]
                ys += [lo, hi, None]
            fig.add_trace(_null_range(xs, ys, width=14, showlegend=first), row=1, col=c)
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=rows["null_median"] * scale,
                    mode="markers",
                    marker={
                        "symbol": "line-ew",
                        "size": 22,
                        "line": {"width": 3, "color": "#4D4D4D"},
                    },
                    name="null median",
                    legendgroup="median",
                    showlegend=first,
                    hovertemplate="null median %{y:.3g}<extra></extra>",
                ),
                row=1,
                col=c,
            )
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=rows["target_change"] * scale,
                    mode="markers+text",
                    marker={
                        "color": OKABE_ITO[1 + k % 7],
                        "size": 14,
                        "symbol": "diamond",
                        "line": {"width": 1, "color": "white"},
                    },
                    text=percentile_labels(rows),
                    textposition="middle right",
                    textfont={"size": 13},
                    name=f"removing {target}",
                    legendgroup=f"target:{target}",
                    showlegend=c == 1,
                    customdata=rows[
                        [
                            "percentile",
                            "n_null",
                            "null_min",
                            "null_max",
                            "contrast",
                            "contrast_low",
                            "contrast_high",
                            "n_items",
                        ]
                    ].to_numpy(),
                    hovertemplate=(
                        f"removing {target}: %{{y:.3g}}<br>percentile in the null: "
                        "%{customdata[0]:.0f} (n = %{customdata[1]})<br>null range "
                        "%{customdata[2]:.3g} to %{customdata[3]:.3g} (table units)<br>"
                        "target minus null mean %{customdata[4]:+.3g} "
                        "[%{customdata[5]:.3g}, %{customdata[6]:.3g}], %{customdata[7]} items"
                        "<extra></extra>"
                    ),
                ),
                row=1,
                col=c,
            )
        fig.update_xaxes(
            tickvals=list(range(len(cells))),
            ticktext=[_tick(cell, narrow=True) for cell in cells],
            tickangle=0,
            range=[-0.6, len(cells) - 0.1],
            row=1,
            col=c,
        )
        if measure not in DAMAGE_MEASURES:
            fig.add_hline(y=0, line=REFERENCE_LINE, row=1, col=c)  # type: ignore[arg-type]
    fig.update_yaxes(title_text="change from the unedited warm model", row=1, col=1)
    fig.update_layout(
        legend={"orientation": "h", "y": -0.2, "x": 0, "yanchor": "top"},
        margin={"b": 140, "t": 175},
        width=max(1200, 170 * sum(widths)),
    )
    fig.update_xaxes(zeroline=False, showgrid=False)
    note = f"error and agreement in pp; KL and loss: the arm's value; {BELIEF_NOTE}"
    return apply(fig, _with_note(title, note), height=700)


def _panel_title(measure: str) -> str:
    """The measure's axis title on two lines (narrow panels)."""
    text = MEASURES.get(measure, (measure, 1.0))[0]
    head, sep, unit = text.rpartition(" (")
    return f"{head}<br>({unit}" if sep else text


def _split_arm(arm: str) -> tuple[str, str, str | None]:
    """``warm/null:finetune:3`` -> (model, intervention, target of a null member or None)."""
    model, _, intervention = arm.partition("/")
    parts = intervention.split(":")
    target = parts[1] if parts[0] == "null" and len(parts) > 1 else None
    return model, intervention, target


def _arm_label(model: str, intervention: str) -> str:
    kind, _, target = intervention.partition(":")
    return f"{model}, {kind}" + (f": {target}" if target else "")


def has_arms(damage: pd.DataFrame) -> bool:
    """Whether a damage table has an arm besides the null's random directions."""
    return any(_split_arm(str(a))[2] is None for a in damage["arm"])


def damage_figure(
    damage: pd.DataFrame,
    title: str = "What each removal costs the model (damage)",
) -> go.Figure:
    """Two panels (held-out loss increase, continuation KL): one row per arm with its mean and
    95% CI, over a grey bar spanning its null's range (min to max over the random directions);
    the random directions themselves are one row of grey points per target. An arm marked
    damaged in the table is drawn as an X and labelled. Per panel: null range, null members,
    one trace per model's arms."""
    check_table(damage, "verdict_damage")
    measures = [m for m in DAMAGE_MEASURES if m in set(damage["measure"].astype(str))]
    measures += sorted(set(damage["measure"].astype(str)) - set(DAMAGE_MEASURES))
    parsed = [_split_arm(str(a)) for a in damage["arm"]]
    df = damage.assign(
        model=[p[0] for p in parsed],
        intervention=[p[1] for p in parsed],
        null_of=[p[2] for p in parsed],
    )
    members = df[df["null_of"].notna()]
    arms = df[df["null_of"].isna()]
    if arms.empty:
        raise TableError("verdict_damage: no arm rows besides the null's random directions")
    order = sorted(
        {(str(m), str(i)) for m, i in zip(arms["model"], arms["intervention"], strict=True)},
        key=lambda mi: (mi[1].split(":")[-1], mi[1], mi[0] != "original"),
    )
    labels = [_arm_label(m, i) for m, i in order]
    counts = members.groupby("null_of")["arm"].nunique()
    null_rows = {str(t): f"random directions ({t}, n = {n})" for t, n in counts.items()}
    y_order = [*labels, *null_rows.values()]
    fig = make_subplots(
        rows=1,
        cols=len(measures),
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=[MEASURES.get(m, (m, 1.0))[0] for m in measures],
    )
    for c, measure in enumerate(measures, start=1):
        first = c == 1
        a = arms[arms["measure"] == measure].assign(
            label=lambda d: [
                _arm_label(str(m), str(i))
                for m, i in zip(d["model"], d["intervention"], strict=True)
            ]
        )
        xs: list[float | None] = []
        ys: list[str | None] = []
        for _, row in a.iterrows():
            xs += [row["null_min"], row["null_max"], None]
            ys += [row["label"], row["label"], None]
        for target, label in null_rows.items():
            nm = members[(members["measure"] == measure) & (members["null_of"] == target)]
            if len(nm):
                xs += [nm["mean"].min(), nm["mean"].max(), None]
                ys += [label, label, None]
        fig.add_trace(_null_range(xs, ys, width=16, showlegend=first), row=1, col=c)
        nm = members[members["measure"] == measure]
        fig.add_trace(
            go.Scatter(
                x=nm["mean"],
                y=[null_rows[str(t)] for t in nm["null_of"]],
                mode="markers",
                marker={"color": "#4D4D4D", "size": 7, "opacity": 0.7},
                name="one random direction",
                legendgroup="members",
                showlegend=first,
                text=nm["arm"],
                hovertemplate="%{text}: %{x:.3g}<extra></extra>",
            ),
            row=1,
            col=c,
        )
        for model in sorted_unique(a["model"], ("original", "warm", "cold")):
            rows = a[a["model"] == model]
            damaged = rows["damaged"].astype(str).str.lower().eq("true").to_numpy()
            color = VARIANT_COLORS.get(model, OKABE_ITO[0])
            fig.add_trace(
                go.Scatter(
                    x=rows["mean"],
                    y=rows["label"],
                    mode="markers+text",
                    marker={
                        "color": color,
                        "size": [16 if d else 12 for d in damaged],
                        "symbol": ["x" if d else "circle" for d in damaged],
                    },
                    error_x={
                        **(error_bars(rows, "mean", "ci_low", "ci_high") or {}),
                        "color": color,
                    },
                    text=["damaged" if d else "" for d in damaged],
                    textposition="top center",
                    textfont={"size": 14, "color": "#B00020"},
                    name=f"{model} model arms (95% CI)",
                    legendgroup=f"model:{model}",
                    showlegend=first,
                    customdata=rows[["n_items", "null_min", "null_max", "damaged"]].to_numpy(),
                    hovertemplate=(
                        "%{y}: %{x:.3g}<br>units: %{customdata[0]}<br>null range "
                        "%{customdata[1]:.3g} to %{customdata[2]:.3g}<br>damaged: "
                        "%{customdata[3]}<extra></extra>"
                    ),
                ),
                row=1,
                col=c,
            )
        fig.update_xaxes(rangemode="tozero", row=1, col=c)
    fig.update_yaxes(categoryorder="array", categoryarray=list(reversed(y_order)), autorange=True)
    fig.update_layout(
        legend={"orientation": "h", "y": -0.16, "x": 0, "yanchor": "top"},
        margin={"b": 140, "l": 60, "t": 130},
    )
    note = "damaged (X): marked so in the table, its held-out loss above every random direction's"
    return apply(fig, _with_note(title, note), height=max(540, 70 * len(y_order) + 280))


def percentile_labels(rows: pd.DataFrame) -> list[str]:
    """The label beside each target marker: its percentile among the null arms, or "tied" when
    the target and every null arm changed the measure by the same amount (a percentile of "at
    or below" would read 100 there)."""
    labels = []
    for r in rows.itertuples():
        p = float(r.percentile)
        if not np.isfinite(p):
            labels.append("")
        elif r.null_min == r.null_max == r.target_change:
            labels.append("\u2002 tied")  # short: the last cell sits at the panel edge
        else:
            labels.append(f"\u2002 {p:.0f}th pct")
    return labels
