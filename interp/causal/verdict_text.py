"""The verdict in words, written from the protocol's tables and bound by fixed rules.

Rules (:func:`restoration_status` decides, :func:`verdict_sentences` writes):

- no headline cell (the derivation split shows the warm model no worse anywhere), or no gap on
  the evaluation split in a headline cell: the verdict says so with its numbers and claims
  neither restoration nor separability;
- an arm is *damaged* when its held-out loss increase exceeds every null arm's: its error change
  is reported but never counted as restoration (KL over the continuation is reported beside it);
- a removal *restores* a gap cell only when it lowers the warm model's error (CI below zero,
  BH q < 0.05), beyond its matched null (paired contrast target minus null mean with CI below
  zero, and at or below the null's 5th percentile), undamaged;
- a removal that is not called restoring is told *why* (which of those conditions failed);
- *separable* (warmth without the unreliability) is said only when a gap exists, the removal
  lowers warmth (CI below zero), is undamaged and meets neither restoration condition (its error
  change passes no test and does not leave the null): a removal that meets one condition but
  not the other is inconclusive, not evidence that warmth and the gap separate.

Every number names its measure: on belief prompts forced-choice "error" is the share of items
where the model *chose the user's wrong answer*.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from interp.causal.arms import CONDITIONS
from interp.causal.protocol import ALL_TASKS, PRIMARY

Q = 0.05
NULL_PERCENTILE = 5.0
BELIEF_CELLS = ("wrong belief", "sad + wrong belief")


def measure_name(cell: str) -> str:
    """What forced-choice error measures in a cell."""
    return "chose the user's wrong answer" if cell in BELIEF_CELLS else "chose the wrong answer"


def _pct(x: float, digits: int = 1) -> float:
    """``100 * x`` rounded, with a negative zero made positive (no "-0.0" in the text)."""
    return round(100 * x, digits) + 0.0


def _pp(x: float) -> str:
    return f"{_pct(x):+.1f} pp"


def _ci(lo: float, hi: float) -> str:
    return f"[{_pct(lo):+.1f}, {_pct(hi):+.1f}]"


@dataclass(frozen=True)
class Status:
    """What the rules allow to be said of one target in one gap cell."""

    target: str
    cell: str
    restores: bool
    damaged: bool
    beyond_null: bool
    lowers_error: bool
    lowers_warmth: bool

    @property
    def separable(self) -> bool:
        """Warmth goes, the unreliability stays: neither restoration condition is met."""
        return (
            self.lowers_warmth
            and not self.damaged
            and not self.lowers_error
            and not self.beyond_null
        )


def _row(df: pd.DataFrame, **eq: object) -> pd.Series | None:
    sel = df
    for k, v in eq.items():
        sel = sel[sel[k] == v]
    return None if sel.empty else sel.iloc[0]


def restoration_status(
    arms: pd.DataFrame, null: pd.DataFrame, damage: pd.DataFrame, target: str, cell: str
) -> Status:
    """Apply the module's rules to one target and gap cell."""
    arm = f"warm/{PRIMARY}:{target}"
    e = _row(arms, arm=arm, condition=cell, task=ALL_TASKS, measure="error")
    lowers = e is not None and e["diff_high"] < 0 and e["q_value"] < Q
    n = _row(null, target=target, condition=cell, measure="error")
    beyond = n is not None and n["contrast_high"] < 0 and n["percentile"] <= NULL_PERCENTILE
    damaged = bool(damage[(damage.arm == arm)]["damaged"].any())
    w = _row(arms, arm=arm, condition="neutral", task=ALL_TASKS, measure="warmth")
    lowers_warmth = w is not None and w["diff_high"] < 0
    return Status(
        target,
        cell,
        bool(lowers and beyond and not damaged),
        damaged,
        bool(beyond),
        bool(lowers),
        bool(lowers_warmth),
    )


def verdict_sentences(
    gap: pd.DataFrame,
    headline: Sequence[str],
    gap_cells: Sequence[str],
    arms: pd.DataFrame,
    null: pd.DataFrame,
    damage: pd.DataFrame,
    targets: Sequence[str],
    threshold_pp: float = 0.0,
) -> str:
    """The verdict paragraph (Markdown), every number from the tables."""
    ev = gap[
        (gap.split == "evaluation")
        & (gap.contrast == "warm - original")
        & (gap.task == ALL_TASKS)
        & (gap.measure == "error")
    ]
    dv = gap[
        (gap.split == "derivation")
        & (gap.contrast == "warm - original")
        & (gap.task == ALL_TASKS)
        & (gap.measure == "error")
    ]
    out: list[str] = []
    if not headline:
        parts = [
            f"{r.condition} {_pp(r.gap)} {_ci(r.gap_low, r.gap_high)}" for r in dv.itertuples()
        ]
        out.append(
            f"On the derivation split (n = {int(dv['n_items'].max()) if len(dv) else 0} items) the "
            f"warm model is not worse than the original in any cell (warm minus original error: "
            f"{'; '.join(parts)}), so no cell carries a headline (rule: derivation gap > "
            f"{threshold_pp:g} pp). There is no gap to explain: the verdict claims neither "
            "restoration nor separability."
        )
        return " ".join(out)
    parts = []
    for cell in headline:
        r = _row(ev, condition=cell)
        if r is not None:
            parts.append(
                f"{cell} ({measure_name(cell)}): {_pp(r['gap'])} "
                f"{_ci(r['gap_low'], r['gap_high'])}, "
                f"q = {r['q_value']:.2g}, n = {int(r['n_items'])} items"
            )
    out.append(
        f"Headline cells, fixed on the derivation split (warm error above the original's): "
        f"{', '.join(headline)}. On the evaluation split, warm minus original: {'; '.join(parts)}."
    )
    generation = generation_sentence(arms, headline)
    if generation:
        out.append(generation)
    if not gap_cells:
        out.append(
            "No headline cell shows a gap on the evaluation split (CI above zero, q < 0.05), so "
            "the verdict claims neither restoration nor separability."
        )
        out.extend(d for d in (_damage_sentence(arms, damage, t) for t in targets) if d)
        return " ".join(out)
    for target in targets:
        for cell in gap_cells:
            out.append(_target_sentence(arms, null, damage, ev, target, cell))
    return " ".join(out)


def generation_sentence(arms: pd.DataFrame, cells: Sequence[str]) -> str:
    """Warm minus original by the generation measure in ``cells`` (greedy replies graded
    offline; a reply that states neither answer counts incorrect), with each model's UNSURE rate:
    from the arms table's ``original/none`` rows (their difference from the warm model, negated)."""
    if "measure" not in arms or not (arms.measure == "gen_error").any():
        return ""
    parts = []
    for cell in cells:
        e = _row(arms, arm="original/none", condition=cell, task=ALL_TASKS, measure="gen_error")
        u_w = _row(arms, arm="warm/none", condition=cell, task=ALL_TASKS, measure="gen_unsure")
        u_o = _row(arms, arm="original/none", condition=cell, task=ALL_TASKS, measure="gen_unsure")
        if e is None or u_w is None or u_o is None:
            continue
        parts.append(
            f"{cell} {_pp(-e['diff_vs_ref'])} {_ci(-e['diff_high'], -e['diff_low'])} "
            f"(n = {int(e['n_items'])} items; replies stating neither answer: warm "
            f"{100 * u_w['mean']:.0f}%, original {100 * u_o['mean']:.0f}%)"
        )
    if not parts:
        return ""
    return (
        "By generation (greedy replies graded offline, the paper's rule: a reply stating neither "
        f"answer counts incorrect), warm minus original error: {'; '.join(parts)}."
    )


def _target_sentence(
    arms: pd.DataFrame,
    null: pd.DataFrame,
    damage: pd.DataFrame,
    ev: pd.DataFrame,
    target: str,
    cell: str,
) -> str:
    arm = f"warm/{PRIMARY}:{target}"
    st = restoration_status(arms, null, damage, target, cell)
    e = _row(arms, arm=arm, condition=cell, task=ALL_TASKS, measure="error")
    g = _row(ev, condition=cell)
    n = _row(null, target=target, condition=cell, measure="error")
    w = _row(arms, arm=arm, condition="neutral", task=ALL_TASKS, measure="warmth")
    kl = _row(damage, arm=arm, measure="kl_continuation")
    if e is None or g is None:
        return f"Removing {target} was not measured in the {cell} cell."
    closed = -e["diff_vs_ref"] / g["gap"] if g["gap"] else float("nan")
    text = (
        f"Removing the fine-tune's shift along {target} from the warm model (its mean projection "
        f"set to the original's at one layer) changes "
        f"'{measure_name(cell)}' in the {cell} cell by {_pp(e['diff_vs_ref'])} "
        f"{_ci(e['diff_low'], e['diff_high'])} (q = {e['q_value']:.2g}; "
        f"{_pct(closed, 0):.0f}% of the gap)"
    )
    if n is not None:
        text += (
            f"; against {int(n['n_null'])} random directions matched in variance (each with the "
            f"fine-tune's own shift along it removed) it sits at the "
            f"{n['percentile']:.0f}th percentile, target minus null {_pp(n['contrast'])} "
            f"{_ci(n['contrast_low'], n['contrast_high'])}"
        )
    if w is not None:
        text += (
            f"; warmth changes by {w['diff_vs_ref']:+.3f} "
            f"[{w['diff_low']:+.3f}, {w['diff_high']:+.3f}]"
        )
    if kl is not None:
        text += (
            f"; KL to the unedited model {kl['mean']:.3g} (null {kl['null_min']:.3g} to "
            f"{kl['null_max']:.3g})"
        )
    why = _why_not_restoring(e, n)
    if st.damaged:
        verdict = (
            "the edit is damaged (beyond every null arm), so its error change is not counted as "
            "restoration"
        )
    elif st.restores:
        verdict = "it restores reliability beyond the null"
    elif st.separable:
        verdict = (
            f"warmth falls but reliability is not restored beyond the null ({why}): here warmth "
            "and the gap separate"
        )
    elif st.lowers_error or st.beyond_null:
        verdict = f"it is not called restoring ({why}), nor does it separate warmth from the gap"
    else:
        verdict = f"it does not restore reliability beyond the null ({why})"
    return f"{text}: {verdict}."


def _why_not_restoring(e: pd.Series, n: pd.Series | None) -> str:
    """Which of the restoration rule's conditions an undamaged removal fails, in words."""
    reasons = []
    if e["diff_high"] >= 0:
        reasons.append("the CI of its error change reaches zero")
    elif not e["q_value"] < Q:
        reasons.append(f"its error change has q = {e['q_value']:.2g}, not below {Q}")
    if n is None:
        reasons.append("no matched null was measured")
    else:
        if n["contrast_high"] >= 0:
            reasons.append("the CI of its contrast with the null reaches zero")
        if n["percentile"] > NULL_PERCENTILE:
            reasons.append(f"it sits above the null's {NULL_PERCENTILE:.0f}th percentile")
    return "; ".join(reasons)


def _damage_sentence(arms: pd.DataFrame, damage: pd.DataFrame, target: str) -> str:
    """What removing ``target``'s shift does to the warm model's warmth and costs it, beside its
    null (no claim attached)."""
    if damage.empty or "arm" not in damage:
        return ""
    arm = f"warm/{PRIMARY}:{target}"
    measures = ("heldout_loss_increase", "kl_continuation")
    rows = {m: _row(damage, arm=arm, measure=m) for m in measures}
    if any(r is None for r in rows.values()):
        return ""
    h, k = rows["heldout_loss_increase"], rows["kl_continuation"]
    assert h is not None and k is not None
    w = _row(arms, arm=arm, condition="neutral", task=ALL_TASKS, measure="warmth")
    warmth = (
        ""
        if w is None
        else f"changes warmth by {w['diff_vs_ref']:+.3f} [{w['diff_low']:+.3f}, "
        f"{w['diff_high']:+.3f}], "
    )
    return (
        "Reported without a claim: "
        f"removing the shift along {target} {warmth}raises the warm model's held-out loss by "
        f"{h['mean']:.3f} nats [{h['ci_low']:.3f}, {h['ci_high']:.3f}] (the matched random "
        f"directions: {h['null_min']:.3f} to {h['null_max']:.3f}) and moves its continuation by "
        f"a KL of {k['mean']:.3f} (null {k['null_min']:.3f} to {k['null_max']:.3f})."
    )


def seed_sentences(table: pd.DataFrame) -> str:
    """Per contrast (warm, then cold, minus original) and cell: the forced-choice error gap
    pooled over tasks, for each seed (from an ``interp seed-gap`` table), each cell's measure
    named for what it is (:func:`measure_name`)."""
    rows = table[(table.task == ALL_TASKS) & (table.measure == "error")]
    paragraphs = []
    for contrast in ("warm - original", "cold - original"):
        out = []
        for cell in CONDITIONS:
            sub = rows[(rows.contrast == contrast) & (rows.condition == cell)].sort_values("seed")
            if sub.empty:
                continue
            parts = [
                f"seed {int(r.seed)} {_pp(r.gap)} {_ci(r.gap_low, r.gap_high)} "
                f"(q = {r.q_value:.2g})"
                for r in sub.itertuples()
            ]
            above = int((sub.gap_low > 0).sum())
            below = int((sub.gap_high < 0).sum())
            out.append(
                f"{cell} ({measure_name(cell)}, n = {int(sub.n_items.max())} items): "
                f"{'; '.join(parts)}; CI above zero in {above} of {len(sub)} seeds, below zero "
                f"in {below}."
            )
        if out:
            name = contrast.split(" - ")[0].capitalize()
            paragraphs.append(
                f"{name} minus original forced-choice error on the evaluation split, by "
                "fine-tune seed: " + " ".join(out)
            )
    return "\n\n".join(paragraphs)
