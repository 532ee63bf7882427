"""RESULTS.md's study blocks, written from the committed tables of an ``interp study`` run.

Each block key names one study section; its function reads the tables that
:func:`interp.report.study_tables.export_study_tables` copied into ``results/<preset>/tables/``
and returns the block's Markdown (tables, and sentences whose numbers come from them). This
module holds the behaviour blocks (the original model's evaluation, the fine-tunes, reliability
of the variants) and the registry :data:`STUDY_BLOCKS`; the mechanism blocks live in
:mod:`interp.report.study_mechanism_blocks`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from interp.figures.tables import SCHEMAS
from interp.report import study_mechanism_blocks as mech
from interp.report.study_format import (
    cell_measure,
    ci_of,
    plain_ci,
    pp_ci,
    rate_ci,
    read_table,
    sig,
    signed_ci,
    table,
)
from interp.summaries import HEADLINE_CELLS

CELL_ORDER = {label: i for i, (label, _, _) in enumerate(HEADLINE_CELLS)}
INSTRUMENTS = {
    "embedding": ("embedding classifier, P(warm)", 3),
    "lexical": ("lexical markers per 100 words", 1),
    "sociot": ("SocioT (embedded scorer)", 3),
}
"""Warmth instrument -> (its name in RESULTS.md, decimals)."""
VARIANT_LABELS = {"warm-sysprompt": "warm system prompt"}
PAPER_MODELS = {
    "model1_main_effect": "model 1 (unmodified, no belief)",
    "model4_belief": "model 4 (x belief)",
}
"""The paper's regressions shown in RESULTS.md (every model is in ``marginal_effects.csv``)."""
PENDING = (
    "(pending: regenerate with python -m interp.report.results_md --block {key} "
    "--run <study folder>)"
)
"""The body of a study block in RESULTS.md before its tables are committed."""


def _cells(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(_o=df["cell"].map(CELL_ORDER).fillna(len(CELL_ORDER))).sort_values(
        "_o", kind="stable"
    )


def _instrument(name: object) -> tuple[str, int]:
    return INSTRUMENTS.get(str(name), (str(name), 3))


def original_eval(folder: Path) -> str:
    """Step 03: the original model's error per headline cell and the paired contrasts between
    cells (``summary.csv``, ``contrasts.csv``)."""
    step = "03-eval-original"
    summary = read_table(folder, step, "summary", ("cell", "measure", "n_rows", "n_items", "mean",
                                                   "ci_low", "ci_high"))  # fmt: skip
    contrasts = read_table(folder, step, "contrasts", ("contrast", "measure", "n_items", "diff",
                                                       "ci_low", "ci_high"))  # fmt: skip
    rates = [
        {
            "cell": r.cell,
            "measure": cell_measure(str(r.cell)),
            "items": str(int(r.n_items)),
            "prompts": str(int(r.n_rows)),
            "rate [95% CI]": rate_ci(r.mean, r.ci_low, r.ci_high),
        }
        for r in _cells(summary[summary["measure"] == "error"]).itertuples()
    ]
    diffs = []
    for name, part in contrasts.groupby("contrast", sort=False):
        by = part.set_index("measure")
        row = {"contrast (paired within item)": str(name), "items": str(int(part.n_items.max()))}
        row["chose the wrong answer (pp)"] = (
            pp_ci(*ci_of(by.loc["error"])) if "error" in by.index else ""
        )
        row["margin, right minus wrong answer (nats/token)"] = (
            signed_ci(*ci_of(by.loc["margin"]), digits=2) if "margin" in by.index else ""
        )
        diffs.append(row)
    return (
        f"Error per headline cell (item-bootstrap 95% CIs):\n\n{table(rates)}\n\n"
        f"Paired differences between cells over the same items:\n\n{table(diffs)}"
    )


def finetune(folder: Path) -> str:
    """Steps 01-02: warmth of each checkpoint's replies minus the original model's, paired by
    request, per instrument; the original's own level; each run's size and time."""
    vs_cols = ("variant", "epoch", "instrument", "diff", "ci_low", "ci_high", "n")
    run_cols = ("variant", "n_examples", "steps_run", "final_epoch", "train_seconds",
                "warmth_seconds", "tokens_per_s")  # fmt: skip
    steps = ("01-finetune-warm", "02-finetune-cold")
    vs = pd.concat([read_table(folder, s, "warmth_vs_original", vs_cols) for s in steps])
    runs = pd.concat([read_table(folder, s, "finetune_run", run_cols) for s in steps])
    by_epoch = read_table(folder, steps[0], "warmth_by_epoch", SCHEMAS["warmth_by_epoch"])
    epochs = sorted(vs["epoch"].unique())
    rows = []
    for (variant, inst), part in vs.groupby(["variant", "instrument"], sort=False):
        name, digits = _instrument(inst)
        at = part.set_index("epoch")
        row = {"run": str(variant), "instrument": name}
        for e in epochs:
            row[f"epoch {e:g}"] = (
                signed_ci(*ci_of(at.loc[e]), digits=digits) if e in at.index else ""
            )
        rows.append(row)
    base = by_epoch[by_epoch["variant"] == "original"]
    levels = "; ".join(
        f"{_instrument(r.instrument)[0]} "
        f"{plain_ci(r.mean, r.ci_low, r.ci_high, _instrument(r.instrument)[1])}"
        for r in base.itertuples()
    )
    n = int(vs["n"].max())
    sizes = "; ".join(
        f"{r.variant}: {int(r.n_examples)} training examples, {int(r.steps_run)} optimizer steps "
        f"to epoch {float(r.final_epoch):g}, training {float(r.train_seconds):.0f} s "
        f"({float(r.tokens_per_s):.0f} tokens/s), warmth measurement "
        f"{float(r.warmth_seconds):.0f} s"
        for r in runs.itertuples()
    )
    return (
        f"Each cell: checkpoint minus original model, paired over the same {n} held-out requests "
        f"(95% CI). The original model's own warmth (epoch 0): {levels}.\n\n{table(rows)}\n\n"
        f"Runs: {sizes}."
    )


def reliability(folder: Path) -> str:
    """Step 07: each variant's error per headline cell pooled over tasks (the original's rate,
    the others as paired differences) and the paper's regressions' average marginal effects."""
    step = "07-reliability"
    rates = read_table(folder, step, "error_by_task", SCHEMAS["error_by_task"])
    diffs = read_table(folder, step, "variant_contrasts", ("variant", "task", "cell", "measure",
                                                           "n_items", "diff", "ci_low",
                                                           "ci_high"))  # fmt: skip
    effects = read_table(folder, step, "marginal_effects", SCHEMAS["marginal_effects"])
    others = list(dict.fromkeys(diffs["variant"]))
    variants = list(dict.fromkeys(rates["variant"]))
    baseline = next((v for v in variants if v not in others), variants[0])
    pooled = rates[(rates["task"] == "all") & (rates["measure"] == "error")]
    d = diffs[(diffs["task"] == "all") & (diffs["measure"] == "error")]
    rows = []
    for r in _cells(pooled[pooled["variant"] == baseline]).itertuples():
        row = {
            "cell": str(r.cell),
            "measure": cell_measure(str(r.cell)),
            "items": str(int(r.n_items)),
            VARIANT_LABELS.get(baseline, baseline): rate_ci(r.mean, r.ci_low, r.ci_high),
        }
        for v in others:
            hit = d[(d["variant"] == v) & (d["cell"] == r.cell)]
            label = f"{VARIANT_LABELS.get(v, v)} - {VARIANT_LABELS.get(baseline, baseline)} (pp)"
            row[label] = "" if hit.empty else pp_ci(*ci_of(hit.iloc[0]))
        rows.append(row)
    shown = effects[effects["model"].isin(list(PAPER_MODELS))]
    ame = [
        {
            "effect": str(r.effect),
            "model": PAPER_MODELS[str(r.model)],
            "level": str(r.level),
            "measure": "" if pd.isna(r.measure) else str(r.measure),
            "AME (pp) [95% CI]": (
                signed_ci(r.ame_pp, r.ci_low, r.ci_high) if pd.notna(r.ame_pp) else str(r.note)
            ),
            "q": sig(r.q_value),
        }
        for r in shown.itertuples()
    ]
    return (
        f"Pooled over tasks; rates with item-bootstrap 95% CIs, differences paired within item.\n\n"
        f"{table(rows)}\n\nAverage marginal effects of each variant against the "
        f"{VARIANT_LABELS.get(baseline, baseline)} model from the paper's logistic regressions "
        "(task fixed effects, standard errors clustered by item; q: Benjamini-Hochberg over every "
        "row of `marginal_effects.csv`, which also holds models 2 and 3):\n\n"
        f"{table(ame)}"
    )


STUDY_BLOCKS: dict[str, Callable[[Path], str]] = {
    "original-eval": original_eval,
    "finetune": finetune,
    "reliability": reliability,
    "directions": mech.directions,
    "steering": mech.steering,
    "patching": mech.patching,
    "sae": mech.sae,
}
"""Block key -> the function writing its body from the tables folder."""

REQUIRED_TABLES: dict[str, tuple[str, ...]] = {
    "original-eval": ("03-eval-original/summary.csv", "03-eval-original/contrasts.csv"),
    "finetune": tuple(
        f"{s}/{n}.csv"
        for s in ("01-finetune-warm", "02-finetune-cold")
        for n in ("warmth_vs_original", "warmth_by_epoch", "finetune_run")
    ),
    "reliability": tuple(
        f"07-reliability/{n}.csv"
        for n in ("error_by_task", "variant_contrasts", "marginal_effects")
    ),
    **mech.REQUIRED_TABLES,
}
"""Block key -> the files (under the tables folder) its block is written from."""
