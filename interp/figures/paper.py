"""The paper's own figures redrawn from the authors' data, with our results beside them.

Inputs are the tidy frames of :mod:`interp.figures.paper_data`. Where our embedded-model
tables share the axes (warmth per epoch; error difference per task and condition) they are
added as a separate trace labelled "SmolLM2-135M (this study)".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.figures.marks import grid, sorted_unique
from interp.figures.paper_data import PAPER_MODELS, TASK_TO_DATASET
from interp.figures.tables import TableError, check_table, require_columns, require_proportions
from interp.figures.theme import (
    OKABE_ITO,
    OURS_COLOR,
    OURS_LABEL,
    REFERENCE_LINE,
    VARIANT_COLORS,
    apply,
)

DATASET_ORDER = ("trivia", "truthfulqa", "disinfo", "medqa")
PAPER_CELLS = (
    ("unmodified", "no belief", "no belief"),
    ("unmodified", "wrong belief", "wrong belief"),
    ("emotion:sad", "no belief", "sad, no belief"),
    ("emotion:sad", "wrong belief", "sad + wrong belief"),
)
"""(authors' condition, authors' test type cell, our error_by_task cell)."""
AMENDMENT_TITLES = {
    "warm": "warm fine-tune",
    "cold": "cold fine-tune",
    "warm-sysprompt": "warm system prompt",
}
_MODEL_COLORS = dict(
    zip(
        PAPER_MODELS,
        (OKABE_ITO[0], OKABE_ITO[1], OKABE_ITO[3], OKABE_ITO[4], OKABE_ITO[5]),
        strict=True,
    )
)


def _wrap(label: str) -> str:
    return label.replace(" + ", " +<br>").replace(", ", ",<br>")


def ours_error_differences(error_by_task: pd.DataFrame, variant: str) -> pd.DataFrame:
    """Our ``variant`` minus original error (pp) per task and cell, tasks mapped to the paper's
    dataset names. Columns: dataset, cell, error_increase_pp (no CI: the table has none for the
    difference)."""
    check_table(error_by_task, "error_by_task")
    part = error_by_task[error_by_task["measure"].astype(str) == "error"]
    require_proportions(part, ["mean"], "error_by_task")
    wide = part.pivot_table(
        index=["task", "cell"], columns="variant", values="mean", aggfunc="mean"
    )
    if "original" not in wide.columns or variant not in wide.columns:
        return pd.DataFrame(columns=["dataset", "cell", "error_increase_pp"])
    diff = ((wide[variant] - wide["original"]) * 100).rename("error_increase_pp").reset_index()
    diff["dataset"] = diff["task"].map(lambda t: TASK_TO_DATASET.get(str(t), str(t)))
    return diff[["dataset", "cell", "error_increase_pp"]].dropna()


def paper_reliability(
    reliability: pd.DataFrame, amendment: str = "warm", ours: pd.DataFrame | None = None
) -> go.Figure:
    """Error increase (pp, amended minus original) per dataset (panels), cell (x) and model
    (bars) for one amendment (warm | cold | warm-sysprompt) of the paper; faded bars are not
    significant after FDR correction. ``ours``: our error_by_task table, whose matching
    variant minus original is added as the "SmolLM2-135M (this study)" bar."""
    require_columns(
        reliability,
        (
            "amendment",
            "model",
            "dataset",
            "condition",
            "cell",
            "error_increase_pp",
            "significant_fdr",
        ),
        "paper reliability",
    )
    part = reliability[reliability["amendment"] == amendment]
    if part.empty:
        raise TableError(
            f"paper reliability: no rows for amendment {amendment!r}; found "
            f"{sorted(reliability['amendment'].unique())}"
        )
    datasets = sorted_unique(part["dataset"], DATASET_ORDER)
    mine = ours_error_differences(ours, amendment) if ours is not None else None
    n_rows, n_cols = grid(len(datasets))
    fig = make_subplots(
        rows=n_rows,
        cols=n_cols,
        shared_yaxes="all",
        horizontal_spacing=0.04,
        vertical_spacing=0.16,
        subplot_titles=datasets,
    )
    x = [_wrap(label) for _, _, label in PAPER_CELLS]
    for i, dataset in enumerate(datasets):
        row, col = i // n_cols + 1, i % n_cols + 1
        for k, model in enumerate(sorted_unique(part["model"], PAPER_MODELS)):
            rows = part[(part["dataset"] == dataset) & (part["model"] == model)].set_index(
                ["condition", "cell"]
            )
            rows = rows.reindex([(c, t) for c, t, _ in PAPER_CELLS])
            significant = rows["significant_fdr"].fillna(False).astype(bool).to_numpy()
            fig.add_trace(
                go.Bar(
                    x=x,
                    y=rows["error_increase_pp"],
                    name=model,
                    legendgroup=model,
                    showlegend=i == 0,
                    marker={
                        "color": _MODEL_COLORS.get(model, OKABE_ITO[k % len(OKABE_ITO)]),
                        "opacity": np.where(significant, 1.0, 0.35),
                    },
                    customdata=rows[["p_fdr"]].to_numpy() if "p_fdr" in rows else None,
                    hovertemplate=(
                        f"{model}<br>%{{x}}<br>%{{y:+.1f}} pp<br>FDR p = "
                        "%{customdata[0]:.3g}<extra></extra>"
                    ),
                ),
                row=row,
                col=col,
            )
        if mine is not None and not mine.empty:
            rows = (
                mine[mine["dataset"] == dataset]
                .set_index("cell")
                .reindex([label for _, _, label in PAPER_CELLS])
            )
            fig.add_trace(
                go.Bar(
                    x=x,
                    y=rows["error_increase_pp"],
                    name=OURS_LABEL,
                    legendgroup="ours",
                    showlegend=i == 0,
                    marker={"color": OURS_COLOR, "line": {"color": "#000000", "width": 1.5}},
                    hovertemplate=f"{OURS_LABEL}<br>%{{x}}<br>%{{y:+.1f}} pp<extra></extra>",
                ),
                row=row,
                col=col,
            )
        fig.add_hline(y=0, line=REFERENCE_LINE, row=row, col=col)
        if col == 1:
            fig.update_yaxes(title_text="error increase vs original (pp)", row=row, col=col)
    fig.update_layout(
        barmode="group", bargap=0.2, legend_title_text="model (faded: n.s. after FDR)"
    )
    title = (
        f"Paper: reliability of the {AMENDMENT_TITLES.get(amendment, amendment)} vs the original "
        "model"
    )
    return apply(fig, title, height=420 * n_rows + 120)


def _ours_warmth(ours: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    check_table(ours, "warmth_by_epoch")
    instruments = set(ours["instrument"].astype(str))
    instrument = "sociot" if "sociot" in instruments else sorted(instruments)[0]
    rows = ours[
        (ours["instrument"].astype(str) == instrument)
        & ours["variant"].astype(str).isin(["original", "warm"])
    ]
    rows = (
        rows.groupby("epoch", as_index=False)[["mean", "ci_low", "ci_high"]]
        .mean()
        .sort_values("epoch")
    )
    lo, hi = float(rows["mean"].min()), float(rows["mean"].max())
    span = hi - lo if hi > lo else 1.0
    for c in ("mean", "ci_low", "ci_high"):
        rows[c] = (rows[c] - lo) / span
    return rows, instrument


def paper_warmth(sociot: pd.DataFrame, ours: pd.DataFrame | None = None) -> go.Figure:
    """The paper's Figure 1: SocioT warmth per epoch per model, min-max normalised over all
    models and epochs (bars: ±1 SEM). ``ours``: our warmth_by_epoch table; its warm line
    (SocioT if present, else the first instrument) is normalised over its own epochs and drawn
    dashed (bars: its 95% CI)."""
    require_columns(sociot, ("model", "epoch", "normalised", "sem_normalised"), "paper SocioT")
    fig = go.Figure()
    for k, model in enumerate(sorted_unique(sociot["model"], PAPER_MODELS)):
        rows = sociot[sociot["model"] == model].sort_values("epoch")
        color = _MODEL_COLORS.get(model, OKABE_ITO[k % len(OKABE_ITO)])
        fig.add_trace(
            go.Scatter(
                x=rows["epoch"],
                y=rows["normalised"],
                mode="lines+markers",
                name=model,
                line={"color": color},
                marker={"color": color},
                error_y={
                    "type": "data",
                    "array": rows["sem_normalised"],
                    "thickness": 2,
                    "width": 4,
                },
                hovertemplate=f"{model}<br>epoch %{{x}}<br>warmth %{{y:.2f}}<extra></extra>",
            )
        )
    if ours is not None:
        rows, instrument = _ours_warmth(ours)
        fig.add_trace(
            go.Scatter(
                x=rows["epoch"],
                y=rows["mean"],
                mode="lines+markers",
                name=f"{OURS_LABEL}, {instrument}",
                line={"color": OURS_COLOR, "dash": "dash", "width": 4},
                marker={"color": OURS_COLOR, "symbol": "diamond", "size": 12},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": np.clip(rows["ci_high"] - rows["mean"], 0, None),
                    "arrayminus": np.clip(rows["mean"] - rows["ci_low"], 0, None),
                    "thickness": 2,
                    "width": 4,
                },
                hovertemplate=f"{OURS_LABEL}<br>epoch %{{x}}<br>warmth %{{y:.2f}}<extra></extra>",
            )
        )
    fig.add_vline(
        x=2,
        line=REFERENCE_LINE,
        annotation_text="'warm' checkpoint (epoch 2)",
        annotation_position="bottom right",
    )
    fig.update_xaxes(title_text="fine-tuning epoch")
    fig.update_yaxes(title_text="warmth, min-max normalised (0-1)")
    fig.update_layout(legend_title_text="model")
    return apply(fig, "Paper Figure 1: warmth over fine-tuning epochs", height=640)


def paper_benchmarks(benchmarks: pd.DataFrame) -> go.Figure:
    """General capability benchmarks (MMLU, GSM8K, AdvBench refusal), original vs warm per
    model, 95% CI bars. ``benchmarks``: :func:`interp.figures.paper_data.load_benchmarks`."""
    require_columns(
        benchmarks,
        ("model", "benchmark", "variant", "accuracy", "ci_low", "ci_high"),
        "paper benchmarks",
    )
    names = sorted_unique(benchmarks["benchmark"], ("MMLU", "GSM8K", "AdvBench"))
    fig = make_subplots(
        rows=1, cols=len(names), shared_yaxes=True, horizontal_spacing=0.03, subplot_titles=names
    )
    models = sorted_unique(benchmarks["model"], PAPER_MODELS)
    for col, name in enumerate(names, start=1):
        for variant in ("original", "warm"):
            rows = benchmarks[
                (benchmarks["benchmark"] == name) & (benchmarks["variant"] == variant)
            ]
            rows = rows.set_index("model").reindex(models).reset_index()
            fig.add_trace(
                go.Bar(
                    x=rows["model"],
                    y=rows["accuracy"],
                    name=variant,
                    legendgroup=variant,
                    showlegend=col == 1,
                    marker_color=VARIANT_COLORS[variant],
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": rows["ci_high"] - rows["accuracy"],
                        "arrayminus": rows["accuracy"] - rows["ci_low"],
                        "thickness": 2,
                        "width": 4,
                    },
                    hovertemplate=f"{variant}<br>%{{x}}<br>%{{y:.1f}}%<extra></extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(tickangle=-35, row=1, col=col)
    fig.update_yaxes(title_text="accuracy (%)", range=[0, 105], row=1, col=1)
    fig.update_layout(barmode="group", legend_title_text="variant (bars: 95% CI)")
    return apply(fig, "Paper: general capabilities, original vs warm", height=640)
