"""The verdict experiment: does removing warmth from the warm model restore its reliability?

Arms (a model and an intervention), each scored by forced choice on the same prompts:

- ``original / none`` and ``warm / none``: the two references;
- ``warm / ablate:<direction>``: each warmth direction (and the sycophancy direction) ablated at
  every layer the direction has (``resid_post``, all positions);
- ``warm / ablate:random``: the same ablation with seeded random directions of the same per-layer
  norms, pooled (per prompt, the mean over the random directions);
- ``original / add:<direction>``: the warmth direction added at its steering layer(s).

Per arm and condition (neutral, sad, wrong belief, sad + wrong belief) the table reports error
and agreement with the user's wrong belief (item-bootstrap CIs), and the paired difference from
``warm / none`` within item (CI, exact McNemar p for 0/1 outcomes). Warmth is measured on replies
to held-out requests (condition ``neutral``; paired Wilcoxon p). :func:`verdict_sentence`
states the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from interp.causal.arms import (
    CONDITIONS,
    Arm,
    WarmthScorer,
    intervention_edits,
    score_warmth,
)
from interp.data.prompt_sets import Prompt
from interp.directions import Direction
from interp.figures.tables import SCHEMAS
from interp.stats.bootstrap import group_means, paired_difference
from interp.stats.paired import paired_p_value
from interp.steer import Intervention, random_directions

VERDICT_COLUMNS = SCHEMAS["verdict"]
REFERENCE = ("warm", "none")


def _long(per_prompt: pd.DataFrame, warmth: pd.DataFrame | None) -> pd.DataFrame:
    fc = per_prompt.dropna(subset=["condition"])
    parts = [
        fc.assign(measure="error", value=fc["error"]),
        fc.dropna(subset=["agrees_with_user"]).assign(
            measure="agrees_with_user", value=lambda d: d["agrees_with_user"]
        ),
    ]
    if warmth is not None and len(warmth):
        parts.append(warmth.assign(measure="warmth", value=warmth["warmth"]))
    cols = ["model", "intervention", "condition", "measure", "item_id", "prompt_id", "value"]
    out = pd.concat([p[cols] for p in parts], ignore_index=True)
    out["arm"] = out["model"] + "/" + out["intervention"]
    return out


def _p_value(df: pd.DataFrame, arm: str, ref: str, measure: str) -> float:
    a = df[df.arm == arm].set_index("prompt_id")["value"]
    b = df[df.arm == ref].set_index("prompt_id")["value"]
    both = a.index.intersection(b.index)
    if len(both) == 0:
        return float("nan")
    x, y = a.loc[both].to_numpy(), b.loc[both].to_numpy()
    return paired_p_value(x, y, binary=measure != "warmth")


def verdict_table(
    per_prompt: pd.DataFrame,
    warmth: pd.DataFrame | None = None,
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """The tidy ``verdict.csv`` table (:data:`VERDICT_COLUMNS`) from per-prompt arm results."""
    long = _long(per_prompt, warmth)
    means = group_means(
        long,
        "value",
        "item_id",
        by=["model", "intervention", "condition", "measure"],
        seed=seed,
        n_boot=n_boot,
    )
    ref = "/".join(REFERENCE)
    records = []
    for row in means.itertuples():
        arm = f"{row.model}/{row.intervention}"
        rec = {c: getattr(row, c) for c in VERDICT_COLUMNS[:8]}
        rec.update(diff_vs_warm=np.nan, diff_low=np.nan, diff_high=np.nan, p_value=np.nan)
        sub = long[
            (long.condition == row.condition)
            & (long.measure == row.measure)
            & long.arm.isin([arm, ref])
        ]
        if arm != ref and (sub.arm == ref).any():
            d = paired_difference(
                sub, "value", "item_id", "arm", ref, arm, seed=seed, n_boot=n_boot
            ).iloc[0]
            rec.update(
                diff_vs_warm=d["diff"],
                diff_low=d["ci_low"],
                diff_high=d["ci_high"],
                p_value=_p_value(sub, arm, ref, str(row.measure)),
            )
        records.append(rec)
    order = {c: i for i, c in enumerate(CONDITIONS)}
    out = pd.DataFrame(records, columns=list(VERDICT_COLUMNS))
    return out.sort_values(
        ["model", "intervention", "measure", "condition"],
        key=lambda s: s.map(order) if s.name == "condition" else s,
    ).reset_index(drop=True)


def _cell(
    table: pd.DataFrame, model: str, intervention: str, condition: str, measure: str
) -> pd.Series | None:
    sel = table[
        (table.model == model)
        & (table.intervention == intervention)
        & (table.condition == condition)
        & (table.measure == measure)
    ]
    return None if sel.empty else sel.iloc[0]


def verdict_sentence(
    table: pd.DataFrame,
    warmth_directions: Sequence[str],
    add_label: str | None,
    condition: str = "sad + wrong belief",
) -> str:
    """One sentence with its numbers: does ablating warmth from the warm model restore the
    original's error (and how much warmth is retained); does adding warmth to the original
    reproduce the warm model's loss."""
    orig, warm = (
        _cell(table, "original", "none", condition, "error"),
        _cell(table, "warm", "none", condition, "error"),
    )
    if orig is None or warm is None:
        return f"No verdict: the {condition} cell is missing."
    gap = warm["mean"] - orig["mean"]
    parts = [
        f"On {condition} prompts the warm model errs {100 * warm['mean']:.1f}% vs the original's "
        f"{100 * orig['mean']:.1f}% (gap {100 * gap:+.1f} pp)"
    ]
    best: tuple[float, str, pd.Series] | None = None
    for name in warmth_directions:
        c = _cell(table, "warm", f"ablate:{name}", condition, "error")
        if c is not None and (best is None or c["mean"] < best[0]):
            best = (c["mean"], name, c)
    if best is not None:
        _, name, c = best
        closed = (warm["mean"] - c["mean"]) / gap if gap != 0 else float("nan")
        w0, w1, wa = (
            _cell(table, m, i, "neutral", "warmth")
            for m, i in (("original", "none"), ("warm", "none"), ("warm", f"ablate:{name}"))
        )
        retained = ""
        if w0 is not None and w1 is not None and wa is not None and w1["mean"] != w0["mean"]:
            retained = (
                f", keeping {100 * (wa['mean'] - w0['mean']) / (w1['mean'] - w0['mean']):.0f}% of "
                "the warmth gain"
            )
        rnd = _cell(table, "warm", "ablate:random", condition, "error")
        rnd_txt = (
            f"; random ablations: {100 * rnd['diff_vs_warm']:+.1f} pp" if rnd is not None else ""
        )
        parts.append(
            f"ablating {name} moves it to {100 * c['mean']:.1f}% ({100 * c['diff_vs_warm']:+.1f} "
            "pp "
            f"[{100 * c['diff_low']:+.1f}, {100 * c['diff_high']:+.1f}], p={c['p_value']:.2g}; "
            f"{_gap_text(closed)}{retained}{rnd_txt})"
        )
    if add_label is not None:
        a = _cell(table, "original", add_label, condition, "error")
        if a is not None:
            parts.append(
                f"adding warmth to the original gives {100 * a['mean']:.1f}% "
                f"({100 * (a['mean'] - orig['mean']):+.1f} pp vs original)"
            )
    return "; ".join(parts) + "."


def _gap_text(closed: float) -> str:
    """How much of the warm-minus-original gap an ablation closed (none to close when equal)."""
    if not np.isfinite(closed):
        return "no warm-minus-original gap to close on these items"
    return f"{100 * closed:.0f}% of the gap closed"


def direction_arms(
    original: Arm,
    warm: Arm,
    directions: Sequence[Direction],
    warmth_direction: Direction,
    *,
    layers: Sequence[int],
    n_random: int,
    seed: int,
    add_layer: int | None = None,
    add_alpha: float = 0.0,
    norms: Mapping[int, float] | None = None,
) -> list[Arm]:
    """The verdict's arms: the two unedited references, each direction ablated from the warm
    model at ``layers`` (those the direction has), ``n_random`` seeded random directions with the
    warmth direction's per-layer norms (one pooled control arm), and the warmth direction added
    to the original at ``add_layer`` (``add_alpha`` times the typical residual norm ``norms``)."""
    arms = [original, warm]

    def ablation(label: str, ds: Sequence[Direction]) -> Arm:
        sets = []
        for d in ds:
            use = tuple(layer for layer in layers if layer in d.layers)
            sets.append(intervention_edits([Intervention("ablate", d, use)]))
        return Arm("warm", label, warm.backend, warm.system, tuple(sets))

    arms += [ablation(f"ablate:{d.name}", [d]) for d in directions]
    arms.append(ablation("ablate:random", random_directions(warmth_direction, n_random, seed=seed)))
    if add_layer is not None and add_layer in warmth_direction.layers:
        iv = Intervention("add", warmth_direction, (add_layer,), alpha=add_alpha)
        arms.append(
            Arm(
                "original",
                f"add:{warmth_direction.name}",
                original.backend,
                original.system,
                (intervention_edits([iv], norms),),
            )
        )
    return arms


def measure_arms(
    arms: Sequence[Arm],
    prompts: Sequence[Prompt],
    requests: Sequence[tuple[str, str]],
    warmth: WarmthScorer,
    *,
    max_new_tokens: int,
    batch_size: int = 16,
    warmth_rows: int = 64,
    warmth_replicates: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-prompt forced-choice rows and per-request warmth rows of every arm (controls pooled
    over their replicates; warmth over at most ``warmth_replicates`` of them, the arms of one
    backend generated together, ``warmth_rows`` rows per batch). Forced choice goes through
    :func:`interp.causal.suffix_arms.score_arms`: arms of one model that edit one residual site
    share a clean prefix, with the unedited model riding on it, where that is cheaper."""
    from interp.causal.suffix_arms import score_arms

    per_prompt = [score_arms(arms, prompts, batch_size, progress)]
    warmth_df = (
        score_warmth(
            arms,
            requests,
            warmth,
            max_new_tokens=max_new_tokens,
            max_rows=warmth_rows,
            max_replicates=warmth_replicates,
        )
        if requests and arms
        else pd.DataFrame()
    )
    return pd.concat(per_prompt, ignore_index=True), warmth_df
