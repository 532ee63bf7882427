"""The paper's four logistic regressions and their average marginal effects, on evaluation rows.

Input: the per-prompt ``results.csv`` rows of ``interp eval`` for a baseline variant (the
original model) and each other variant (warm, cold, warm system prompt ...). For every other
variant its rows and the baseline's are stacked with ``is_finetuned`` = 1 / 0 and the outcome
``is_incorrect`` = the row's ``error``, and the paper's models (:mod:`interp.stats.regressions`)
are fitted with task fixed effects and standard errors clustered by item:

- ``model1_main_effect``: unmodified, no-belief prompts;
- ``model2_grouped_context``: no-belief prompts, ``is_finetuned x`` context group (none /
  emotion / relation / stake);
- ``model3_detailed_context``: no-belief prompts, ``is_finetuned x`` condition (unmodified,
  emotion:sad, ...);
- ``model4_belief``: no-belief and belief prompts, ``is_finetuned x`` belief (no belief /
  belief: the user states a wrong answer or doubts the right one).

The friends-preface control (a preface without a belief) enters none of them. A model whose
interacting factor has one level in the data (say, only unmodified prompts were evaluated), or
whose outcome takes one value, is skipped: it keeps one row in each table, numbers missing, its
reason in ``note`` (so that a table is never empty and a reader sees why). Effects are average
marginal effects of the variant in percentage points, over all rows and per level of the factor,
with delta-method CIs from the item-clustered covariance, and Benjamini-Hochberg q-values across
every AME row of the table.

What the outcome measures is named per row (``measure``): in forced choice, "forced-choice error"
on prompts without a belief and "chose the user's wrong answer" on belief prompts (preferring the
wrong answer there is agreeing with the user).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

from interp.data.contexts import UNMODIFIED, group_of
from interp.data.templates import BELIEF_TEMPLATES
from interp.figures.tables import SCHEMAS
from interp.stats import (
    average_marginal_effects,
    fdr_bh,
    model1_main_effect,
    model2_grouped_context,
    model3_detailed_context,
    model4_belief,
)
from interp.stats.regressions import LogitFit

REGRESSION_COLUMNS = SCHEMAS["regressions"]
MARGINAL_EFFECT_COLUMNS = SCHEMAS["marginal_effects"]
MODELS = (
    "model1_main_effect",
    "model2_grouped_context",
    "model3_detailed_context",
    "model4_belief",
)
FACTORS = {
    "model1_main_effect": None,
    "model2_grouped_context": "context_group",
    "model3_detailed_context": "condition",
    "model4_belief": "belief",
}
"""Each model's interacting factor (a column of :func:`regression_frame`)."""

NO_BELIEF, BELIEF = "no belief", "belief"
FIXED_EFFECTS = ("task",)
ITEM = "item_id"


def measure_name(mode: str, belief: bool) -> str:
    """What ``error`` measures on a prompt of this scoring mode, with or without a belief."""
    if mode == "generation":
        return "incorrect reply (user states a wrong belief)" if belief else "incorrect reply"
    return "chose the user's wrong answer" if belief else "forced-choice error"


def regression_frame(results: pd.DataFrame, is_finetuned: int) -> pd.DataFrame:
    """One variant's per-prompt rows as regression rows (preface control and rows without an
    error value dropped): ``is_incorrect, is_finetuned, task, item_id, condition,
    context_group, belief, template, mode``."""
    df = results[results["error"].notna()]
    df = df[df["template"].isin(("no_belief", *BELIEF_TEMPLATES))]
    has_belief = df["template"].isin(BELIEF_TEMPLATES).to_numpy()
    mode = df["mode"].astype(str) if "mode" in df.columns else "forced_choice"
    return pd.DataFrame(
        {
            "is_incorrect": df["error"].astype(int).to_numpy(),
            "is_finetuned": is_finetuned,
            "task": df["task"].astype(str).to_numpy(),
            ITEM: df["item_id"].astype(str).to_numpy(),
            "condition": df["condition"].astype(str).to_numpy(),
            "context_group": [group_of(c) for c in df["condition"].astype(str)],
            "belief": np.where(has_belief, BELIEF, NO_BELIEF),
            "template": df["template"].astype(str).to_numpy(),
            "mode": np.asarray(mode),
        }
    )


def model_rows(frame: pd.DataFrame, model: str) -> pd.DataFrame:
    """The rows a model is fitted on (see the module doc)."""
    no_belief = frame["belief"] == NO_BELIEF
    if model == "model1_main_effect":
        return frame[no_belief & (frame["condition"] == UNMODIFIED)]
    if model in ("model2_grouped_context", "model3_detailed_context"):
        return frame[no_belief]
    if model == "model4_belief":
        return frame
    raise ValueError(f"unknown model {model!r}; models are {list(MODELS)}")


def _fit(model: str, rows: pd.DataFrame) -> LogitFit:
    fe, item = FIXED_EFFECTS, ITEM
    if model == "model1_main_effect":
        return model1_main_effect(rows, fixed_effects=fe, item_col=item)
    if model == "model2_grouped_context":
        return model2_grouped_context(
            rows, context_col="context_group", reference="none", fixed_effects=fe, item_col=item
        )
    if model == "model3_detailed_context":
        return model3_detailed_context(
            rows, condition_col="condition", reference=UNMODIFIED, fixed_effects=fe, item_col=item
        )
    return model4_belief(
        rows, belief_col="belief", reference=NO_BELIEF, fixed_effects=fe, item_col=item
    )


def skip_reason(model: str, rows: pd.DataFrame) -> str | None:
    """Why the data do not support ``model`` (None: they do)."""
    if rows.empty:
        return "no rows (no prompts of the kind the model is fitted on)"
    if rows["is_finetuned"].nunique() < 2:
        return "only one of the two variants has rows"
    if rows["is_incorrect"].nunique() < 2:
        return f"the outcome takes one value ({int(rows['is_incorrect'].iat[0])}) in every row"
    factor = FACTORS[model]
    if factor is not None and rows[factor].nunique() < 2:
        return f"{factor} has one level ({rows[factor].iat[0]!r}) in the data"
    return None


def _measure(rows: pd.DataFrame) -> str:
    names = sorted({measure_name(m, b == BELIEF) for m, b in zip(rows["mode"], rows["belief"],
                                                                  strict=True)})  # fmt: skip
    return " / ".join(names)


@dataclass(frozen=True)
class PaperModels:
    """The regression coefficients, the AMEs, and per ``variant/model`` why a model was skipped
    or what went wrong numerically in a fit that was kept (``notes``; also in the tables'
    ``note`` column)."""

    regressions: pd.DataFrame
    effects: pd.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def _coefficients(fit: LogitFit, variant: str, model: str) -> pd.DataFrame:
    coef = fit.coefficients()
    coef.insert(0, "model", model)
    coef.insert(0, "variant", variant)
    coef["n_obs"], coef["n_items"] = fit.n_obs, fit.n_clusters
    return coef


def _effects(fit: LogitFit, rows: pd.DataFrame, variant: str, baseline: str, model: str
             ) -> pd.DataFrame:  # fmt: skip
    ame = average_marginal_effects(fit)
    factor = FACTORS[model]
    levels = rows[factor].to_numpy() if factor else None
    out = []
    for r in ame.itertuples():
        part = rows if levels is None or r.level == "all" else rows[levels == r.level]
        out.append(
            {
                "variant": variant,
                "model": model,
                "effect": f"{variant} - {baseline}",
                "by": factor if factor and r.level != "all" else "all",
                "level": r.level,
                "measure": _measure(part),
                "n_rows": r.n_rows,
                "ame_pp": 100 * r.ame,
                "ci_low": 100 * r.ci_low,
                "ci_high": 100 * r.ci_high,
                "p_value": r.p_value,
            }
        )
    return pd.DataFrame(out)


def paper_models(results: Mapping[str, pd.DataFrame], baseline: str) -> PaperModels:
    """The four models of every variant against ``baseline`` (see the module doc).

    ``results``: variant -> its per-prompt evaluation rows (columns ``item_id, task, condition,
    template, error`` and optionally ``mode``). Returns :class:`PaperModels` with the tables in
    :data:`REGRESSION_COLUMNS` and :data:`MARGINAL_EFFECT_COLUMNS` (AMEs and their CIs in
    percentage points; ``q_value``: BH across all AME rows).
    """
    if baseline not in results:
        raise ValueError(f"baseline {baseline!r} is not among the variants {list(results)}")
    base = regression_frame(results[baseline], 0)
    coefs, effects, skipped, notes = [], [], {}, {}
    for variant, df in results.items():
        if variant == baseline:
            continue
        frame = pd.concat([base, regression_frame(df, 1)], ignore_index=True)
        for model in MODELS:
            rows = model_rows(frame, model).reset_index(drop=True)
            key = f"{variant}/{model}"
            reason = skip_reason(model, rows)
            if reason is not None:
                skipped[key] = reason
                note = {"variant": variant, "model": model, "note": f"skipped: {reason}"}
                coefs.append(pd.DataFrame([note]))
                effects.append(pd.DataFrame([{**note, "effect": f"{variant} - {baseline}",
                                              "by": "all", "level": "all"}]))  # fmt: skip
                continue
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", PerfectSeparationWarning)
                fit = _fit(model, rows)
            if any(issubclass(w.category, PerfectSeparationWarning) for w in caught):
                notes[key] = "perfect separation: some coefficients and their SEs are unbounded"
            coefs.append(_coefficients(fit, variant, model).assign(note=notes.get(key, "")))
            effects.append(
                _effects(fit, rows, variant, baseline, model).assign(note=notes.get(key, ""))
            )
    if len(results) < 2:
        note = {"variant": baseline, "model": "none", "note": "no variant besides the baseline"}
        coefs.append(pd.DataFrame([note]))
        effects.append(pd.DataFrame([{**note, "by": "all", "level": "all"}]))
    reg = pd.concat(coefs, ignore_index=True)
    reg = reg.reindex(columns=list(REGRESSION_COLUMNS))
    ame = pd.concat(effects, ignore_index=True).reindex(columns=list(MARGINAL_EFFECT_COLUMNS))
    ame["q_value"] = fdr_bh(ame["p_value"].to_numpy(dtype=float))
    return PaperModels(reg, ame, skipped, notes)
