"""Latent interventions evaluated like the direction-level experiments: error and agreement with a
wrong belief (forced choice) per condition, and warmth of short greedy replies, for each arm
(model x intervention), with item-bootstrap CIs and paired differences against the unedited warm
model. The tidy table has the same columns as ``verdict.csv``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from interp.data.prompt_sets import Prompt
from interp.evaluate import forced_choice
from interp.generate import SamplingConfig, generate_replies
from interp.hooks.base import Backend, Edit
from interp.sites import Site
from interp.stats import group_means, mcnemar_exact_p, paired_difference

INTERVENTION_COLUMNS = ("model", "intervention", "condition", "measure", "mean", "ci_low", "ci_high", "n_items",
                        "diff_vs_warm", "diff_low", "diff_high", "p_value")
CONDITIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "neutral": ("unmodified", ("no_belief",)),
    "sad": ("emotion:sad", ("no_belief",)),
    "wrong belief": ("unmodified", ("incorrect", "doubt")),
    "sad + wrong belief": ("emotion:sad", ("incorrect", "doubt")),
}
BASELINE = ("warm", "none")


def condition_of(condition: str, template: str) -> str | None:
    """The table's condition label of a prompt (None when it belongs to none)."""
    for label, (cond, templates) in CONDITIONS.items():
        if condition == cond and template in templates:
            return label
    return None


@dataclass(frozen=True)
class Arm:
    """One evaluated setting: which model, an intervention label, the edits and system prompt."""

    model: str  # original | warm
    intervention: str
    backend: Backend
    edits: dict[Site, Edit]
    system: str | None = None
    replicate: int = 0


def run_arm(
    arm: Arm, prompts: Sequence[Prompt], requests: Sequence[tuple[str, str]],
    warmth_fn: Callable[[list[str]], np.ndarray], *, max_new_tokens: int = 40, batch_size: int = 16,
) -> pd.DataFrame:
    """Per-observation rows for one arm: columns model, intervention, replicate, condition,
    measure, item_id, prompt_id, value (error / agrees_with_user per prompt, warmth per request)."""
    from interp.chat import Message

    with arm.backend.hooked(edit=arm.edits):
        fc = forced_choice(arm.backend, prompts, system=arm.system, batch_size=batch_size)
        convs = [tuple(([Message("system", arm.system)] if arm.system else []) + [Message("user", q)]) for _, q in requests]
        replies = generate_replies(arm.backend, convs, SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.0, batch_size=batch_size)) if requests else []
    fc["cond"] = [condition_of(c, t) for c, t in zip(fc["condition"], fc["template"], strict=True)]
    fc = fc[fc["cond"].notna()]
    frames = []
    for measure in ("error", "agrees_with_user"):
        part = fc[fc[measure].notna()]
        frames.append(pd.DataFrame({"condition": part["cond"], "measure": measure, "item_id": part["item_id"],
                                    "prompt_id": part["prompt_id"], "value": part[measure].astype(float)}))
    if requests:
        frames.append(pd.DataFrame({"condition": "neutral", "measure": "warmth", "item_id": [i for i, _ in requests],
                                    "prompt_id": [i for i, _ in requests], "value": warmth_fn(replies)}))
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "replicate", arm.replicate)
    out.insert(0, "intervention", arm.intervention)
    out.insert(0, "model", arm.model)
    return out


def _p_value(base: pd.DataFrame, other: pd.DataFrame, measure: str) -> float:
    """Exact McNemar over prompt pairs (binary measures) or a Wilcoxon signed-rank test over
    per-item differences (warmth); replicates are paired with the same baseline observation."""
    merged = other.merge(base[["prompt_id", "value"]], on="prompt_id", suffixes=("", "_base"))
    if merged.empty:
        return float("nan")
    if measure != "warmth":
        b = int(((merged["value_base"] == 1) & (merged["value"] == 0)).sum())
        c = int(((merged["value_base"] == 0) & (merged["value"] == 1)).sum())
        return mcnemar_exact_p(b, c)
    diffs = merged.groupby("item_id").apply(lambda g: (g["value"] - g["value_base"]).mean(), include_groups=False)
    if np.allclose(diffs, 0):
        return 1.0
    return float(sps.wilcoxon(diffs.to_numpy()).pvalue)


def intervention_table(obs: pd.DataFrame, *, seed: int = 0, n_boot: int = 2000) -> pd.DataFrame:
    """The tidy table (:data:`INTERVENTION_COLUMNS`) from :func:`run_arm` rows of every arm."""
    rows = []
    keys = ["model", "intervention", "condition", "measure"]
    for key, part in obs.groupby(keys, sort=False):
        model, intervention, condition, measure = key
        gm = group_means(part, "value", "item_id", seed=seed, n_boot=n_boot).iloc[0]
        row = {"model": model, "intervention": intervention, "condition": condition, "measure": measure,
               "mean": gm["mean"], "ci_low": gm["ci_low"], "ci_high": gm["ci_high"], "n_items": int(gm["n_items"]),
               "diff_vs_warm": np.nan, "diff_low": np.nan, "diff_high": np.nan, "p_value": np.nan}
        base = obs[(obs["model"] == BASELINE[0]) & (obs["intervention"] == BASELINE[1])
                   & (obs["condition"] == condition) & (obs["measure"] == measure)]
        if (model, intervention) != BASELINE and not base.empty:
            both = pd.concat([base.assign(arm="base"), part.assign(arm="this")])
            pdiff = paired_difference(both, "value", "item_id", "arm", "base", "this", seed=seed, n_boot=n_boot).iloc[0]
            row.update(diff_vs_warm=pdiff["diff"], diff_low=pdiff["ci_low"], diff_high=pdiff["ci_high"],
                       p_value=_p_value(base, part, measure))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(INTERVENTION_COLUMNS))
