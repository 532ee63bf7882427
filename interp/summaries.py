"""Summary tables of evaluation results: error and agreement per condition, with item CIs.

Pure functions: a tidy per-prompt frame (from :mod:`interp.evaluate`) in, a tidy summary out.
CIs are percentile intervals of a bootstrap that resamples items (all of an item's prompts
together), so conditions that share items keep their dependence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from interp.data.templates import BELIEF_TEMPLATES
from interp.stats import group_means, paired_difference

# The headline cells: (label, condition, templates). Each row belongs to at most one cell.
HEADLINE_CELLS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("no belief", "unmodified", ("no_belief",)),
    ("friends preface (control)", "unmodified", ("preface",)),
    ("wrong belief", "unmodified", BELIEF_TEMPLATES),
    ("sad, no belief", "emotion:sad", ("no_belief",)),
    ("sad + wrong belief", "emotion:sad", BELIEF_TEMPLATES),
)


def headline_cell(condition: str, template: str) -> str | None:
    """The headline cell a prompt belongs to, if any."""
    for label, cond, templates in HEADLINE_CELLS:
        if condition == cond and template in templates:
            return label
    return None


def headline_summary(results: pd.DataFrame, *, seed: int = 0, n_boot: int = 2000) -> pd.DataFrame:
    """Error (and agreement with the user on belief cells) per headline cell with 95% CIs.

    Columns: cell, measure, n_rows, n_items, mean, ci_low, ci_high. Rows whose error is
    missing (dropped refusals, unsure grades) are left out and counted nowhere.
    """
    df = results.copy()
    df["cell"] = [headline_cell(c, t) for c, t in zip(df["condition"], df["template"], strict=True)]
    df = df[df["cell"].notna()]
    out = []
    for measure in ("error", "agrees_with_user"):
        part = df[df[measure].notna()]
        if part.empty:
            continue
        table = group_means(part, measure, "item_id", seed=seed, by=["cell"], n_boot=n_boot)
        table.insert(1, "measure", measure)
        out.append(table)
    if not out:
        return pd.DataFrame(
            columns=["cell", "measure", "n_rows", "n_items", "mean", "ci_low", "ci_high"]
        )
    summary = pd.concat(out, ignore_index=True)
    order = {label: i for i, (label, _, _) in enumerate(HEADLINE_CELLS)}
    summary["_order"] = summary["cell"].map(order)
    summary = summary.sort_values(["measure", "_order"]).drop(columns="_order")
    return summary[
        ["cell", "measure", "n_rows", "n_items", "mean", "ci_low", "ci_high"]
    ].reset_index(drop=True)


def condition_summary(results: pd.DataFrame, *, seed: int = 0, n_boot: int = 1000) -> pd.DataFrame:
    """Error per task x condition x template with item-bootstrap 95% CIs (and mean margin
    where forced-choice margins exist)."""
    part = results[results["error"].notna()]
    table = group_means(
        part, "error", "item_id", seed=seed, by=["task", "condition", "template"], n_boot=n_boot
    )
    if "margin" in results.columns:
        margins = (
            part.groupby(["task", "condition", "template"])["margin"].mean().rename("mean_margin")
        )
        table = table.merge(margins.reset_index(), on=["task", "condition", "template"], how="left")
    return table


def format_ci(mean: float, low: float, high: float, percent: bool = True) -> str:
    """``12.3% [8.1, 16.0]`` (or plain numbers)."""
    if not np.isfinite(mean):
        return "n/a"
    k = 100.0 if percent else 1.0
    unit = "%" if percent else ""
    return f"{mean * k:.1f}{unit} [{low * k:.1f}, {high * k:.1f}]"


# (label, baseline cell, compared cell): paired over the items present in both.
CONTRASTS: tuple[tuple[str, str, str], ...] = (
    ("wrong belief - no belief", "no belief", "wrong belief"),
    ("sad - neutral, no belief", "no belief", "sad, no belief"),
    ("sad + wrong belief - wrong belief", "wrong belief", "sad + wrong belief"),
    ("friends preface - no belief", "no belief", "friends preface (control)"),
)


def paired_contrasts(results: pd.DataFrame, *, seed: int = 0, n_boot: int = 2000) -> pd.DataFrame:
    """Within-item differences between headline cells, for error and (when present) margin.

    Each item's prompts in a cell are averaged first, so an item counts once per cell; the CI
    resamples items. Columns: contrast, measure, n_items, diff, ci_low, ci_high.
    """
    df = results.copy()
    df["cell"] = [headline_cell(c, t) for c, t in zip(df["condition"], df["template"], strict=True)]
    measures = [m for m in ("error", "margin") if m in df.columns]
    per_item = df[df["cell"].notna()].groupby(["item_id", "cell"], as_index=False)[measures].mean()
    rows = []
    for label, base, other in CONTRASTS:
        pair = per_item[per_item["cell"].isin([base, other])]
        if set(pair["cell"]) != {base, other}:
            continue
        for measure in measures:
            part = pair[pair[measure].notna()]
            d = paired_difference(
                part, measure, "item_id", "cell", base, other, seed=seed, n_boot=n_boot
            )
            rows.append(
                {
                    "contrast": label,
                    "measure": measure,
                    "n_items": int(d["n_items"].iloc[0]),
                    "diff": float(d["diff"].iloc[0]),
                    "ci_low": float(d["ci_low"].iloc[0]),
                    "ci_high": float(d["ci_high"].iloc[0]),
                }
            )
    return pd.DataFrame(
        rows, columns=["contrast", "measure", "n_items", "diff", "ci_low", "ci_high"]
    )


def task_cell_summary(results: pd.DataFrame, *, seed: int = 0, n_boot: int = 1000) -> pd.DataFrame:
    """Error and agreement per task x headline cell with item-bootstrap 95% CIs.

    Adds the pooled rows under ``task == "all"``. Columns: task, cell, measure, mean, ci_low,
    ci_high, n_items (the tidy ``error_by_task`` schema without its ``variant`` column).
    """
    df = results.copy()
    df["cell"] = [headline_cell(c, t) for c, t in zip(df["condition"], df["template"], strict=True)]
    df = df[df["cell"].notna()]
    pooled = df.assign(task="all")
    both = pd.concat([df, pooled], ignore_index=True)
    out = []
    for measure in ("error", "agrees_with_user"):
        if measure not in both.columns:
            continue
        part = both[both[measure].notna()]
        if part.empty:
            continue
        table = group_means(part, measure, "item_id", seed=seed, by=["task", "cell"], n_boot=n_boot)
        table["measure"] = measure
        out.append(table)
    columns = ["task", "cell", "measure", "mean", "ci_low", "ci_high", "n_items"]
    if not out:
        return pd.DataFrame(columns=columns)
    return pd.concat(out, ignore_index=True)[columns]


def variant_table(
    results_by_variant: dict[str, pd.DataFrame], *, seed: int = 0, n_boot: int = 1000
) -> pd.DataFrame:
    """:func:`task_cell_summary` of several model variants stacked with a leading ``variant``
    column."""
    frames = []
    for variant, results in results_by_variant.items():
        table = task_cell_summary(results, seed=seed, n_boot=n_boot)
        table.insert(0, "variant", variant)
        frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


VARIANT_CONTRAST_COLUMNS = [
    "variant",
    "task",
    "cell",
    "measure",
    "n_items",
    "diff",
    "ci_low",
    "ci_high",
]


def variant_contrasts(
    results: dict[str, pd.DataFrame], baseline: str, *, seed: int, n_boot: int
) -> pd.DataFrame:
    """Each variant minus ``baseline`` per task (and pooled) x headline cell, paired within item.

    Columns: variant, task, cell, measure, n_items, diff, ci_low, ci_high.
    """
    frames = []
    for variant, df in results.items():
        part = df.assign(variant=variant)
        cells = zip(part["condition"], part["template"], strict=True)
        part["cell"] = [headline_cell(c, t) for c, t in cells]
        frames.append(part[part["cell"].notna()])
    stacked = pd.concat(frames, ignore_index=True)
    stacked = pd.concat([stacked, stacked.assign(task="all")], ignore_index=True)
    rows = []
    for measure in ("error", "agrees_with_user"):
        if measure not in stacked.columns:
            continue
        kept = stacked[stacked[measure].notna()]
        per_item = kept.groupby(["variant", "task", "cell", "item_id"], as_index=False)[
            measure
        ].mean()
        for variant in results:
            if variant == baseline:
                continue
            pair = per_item[per_item["variant"].isin([baseline, variant])]
            d = paired_difference(pair, measure, "item_id", "variant", baseline, variant,
                                  seed=seed, by=["task", "cell"], n_boot=n_boot)  # fmt: skip
            for r in d.itertuples():
                rows.append({"variant": variant, "task": r.task, "cell": r.cell,
                             "measure": measure, "n_items": int(r.n_items), "diff": float(r.diff),
                             "ci_low": float(r.ci_low), "ci_high": float(r.ci_high)})  # fmt: skip
    return pd.DataFrame(rows, columns=VARIANT_CONTRAST_COLUMNS)
