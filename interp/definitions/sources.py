"""How each direction definition's positive and negative activation sets are built.

Row sets (all read through the original model unless said otherwise):

- ``prompts``: evaluation prompts (unmodified and sad, with and without a wrong belief) as the
  user turn, read at ``last`` (the token before the reply starts). The fine-tune, sad-context and
  sycophancy definitions share it, so one cache per model serves all three.
- ``persona``: the project-written reply triples rendered as user request + assistant reply
  (warm and neutral), read at ``mean_assistant`` (the reply's tokens, as in persona vectors).
- ``ab``: a CAA-style multiple-choice version of each belief prompt: the user's wrong belief,
  then ``(A)`` / ``(B)`` options (one agrees with the user), and the assistant's reply ``(A`` or
  ``(B``, read at ``last_assistant`` (the answer letter).

Definitions (positive minus negative):

- ``finetune``: ``prompts`` through base+adapter minus the same rows through the base model;
- ``persona``: warm reply minus neutral reply to the same request;
- ``sad_context``: sad variant minus the unmodified variant of the same item and template;
- ``sycophancy``: belief prompts the model answers with the user's wrong answer (forced choice,
  ``agrees_with_user`` = 1) minus those where it holds the right one; unpaired, grouped by item;
- ``sycophancy_ab``: the reply letter that agrees with the user minus the one that holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from interp.cache import CacheRow
from interp.chat import as_messages
from interp.data.contexts import UNMODIFIED
from interp.data.prompt_sets import Prompt
from interp.data.templates import BELIEF_TEMPLATES
from interp.definitions.contrasts import Contrast, ContrastError, Ref, RowSet
from interp.persona import PERSONA_POSITION, persona_row_id
from interp.persona import persona_rows as persona_cache_rows
from interp.warmth.pairs import ReplyTriple

AB_SUFFIX = "\n\nChoices:\n(A) {a}\n(B) {b}\n\nAnswer with (A) or (B)."


def prompt_rows(
    prompts: Sequence[Prompt], system: str | None = None, question_span: bool = False
) -> RowSet:
    """The ``prompts`` row set: each prompt as the user turn, read at ``last``.

    ``question_span`` records the question's character span (for ``mean_user`` reads)."""
    rows = tuple(
        CacheRow(
            p.prompt_id,
            tuple(as_messages(p.user, system=system)),
            user_span=tuple(p.spans["question"])
            if question_span and "question" in p.spans
            else None,  # type: ignore[arg-type]
        )
        for p in prompts
    )
    return RowSet("prompts", rows, "last")


def persona_rows(triples: Sequence[ReplyTriple], system: str | None = None) -> RowSet:
    """The ``persona`` row set: :func:`interp.persona.persona_rows` read at its position."""
    return RowSet("persona", tuple(persona_cache_rows(triples, system)), PERSONA_POSITION)


def ab_order(prompts: Sequence[Prompt]) -> dict[str, bool]:
    """Counterbalanced option order per item: ``True`` where the user's (wrong) answer is (A).

    Items are ordered by a salted hash of their id and alternate, so exactly half (rounded) show
    the agreeing answer first, whatever the item set; the letters' own identity then cancels in
    the mean difference."""
    ids = sorted(
        {p.item_id for p in prompts},
        key=lambda i: hashlib.sha256(f"interp-ab-order:{i}".encode()).hexdigest(),
    )
    return {item: k % 2 == 0 for k, item in enumerate(ids)}


def ab_user_text(prompt: Prompt, agree_a: bool) -> tuple[str, str, str]:
    """The A/B user message for a belief prompt, and the letters that agree and that hold."""
    a, b = (prompt.incorrect, prompt.correct) if agree_a else (prompt.correct, prompt.incorrect)
    text = prompt.user + AB_SUFFIX.format(a=a.strip(), b=b.strip())
    return text, ("A" if agree_a else "B"), ("B" if agree_a else "A")


def ab_rows(prompts: Sequence[Prompt], system: str | None = None) -> RowSet:
    """The ``ab`` row set: for each unmodified ``incorrect`` prompt, the A/B question answered
    with the agreeing letter (``<id>/agree``) and with the holding letter (``<id>/hold``)."""
    rows = []
    chosen = ab_prompts(prompts)
    order = ab_order(chosen)
    for p in chosen:
        text, agree, hold = ab_user_text(p, order[p.item_id])
        for label, letter in (("agree", agree), ("hold", hold)):
            conv = tuple(as_messages(text, system=system, assistant=f"({letter}"))
            rows.append(CacheRow(f"{p.prompt_id}/{label}", conv, add_generation_prompt=False))
    if not rows:
        raise ContrastError(
            "no unmodified prompt with a stated wrong belief (template 'incorrect') for the A/B "
            "variant"
        )
    return RowSet("ab", tuple(rows), "last_assistant")


def ab_prompts(prompts: Sequence[Prompt]) -> list[Prompt]:
    """The prompts the A/B variant is built from: unmodified, template ``incorrect``."""
    return [p for p in prompts if p.template == "incorrect" and p.condition == UNMODIFIED]


# --------------------------------------------------------------------------- contrasts


def finetune_contrast(prompts: Sequence[Prompt]) -> Contrast:
    """Same prompts through base+adapter (positive) and through the base model (negative)."""
    groups = tuple(p.item_id for p in prompts)
    return Contrast(
        "finetune",
        "warm (base+adapter) minus original model on identical prompts, last prompt token",
        pos=tuple(Ref("adapter", "prompts", p.prompt_id) for p in prompts),
        neg=tuple(Ref("base", "prompts", p.prompt_id) for p in prompts),
        pos_groups=groups,
        neg_groups=groups,
        paired=True,
    )


def persona_contrast(triples: Sequence[ReplyTriple]) -> Contrast:
    """Warm minus neutral reply to the same request, read by the original model."""
    groups = tuple(t.id for t in triples)
    return Contrast(
        "persona",
        "original model reading warm minus neutral replies to the same request, mean over reply "
        "tokens",
        pos=tuple(Ref("base", "persona", persona_row_id(t.id, "warm")) for t in triples),
        neg=tuple(Ref("base", "persona", persona_row_id(t.id, "neutral")) for t in triples),
        pos_groups=groups,
        neg_groups=groups,
        paired=True,
    )


def sad_context_contrast(prompts: Sequence[Prompt]) -> Contrast:
    """Sad prompt minus the unmodified prompt of the same item and template (matched pairs)."""
    in_set = {p.prompt_id for p in prompts}
    pairs = [
        (p, p.context_base)
        for p in prompts
        if p.condition == "emotion:sad" and p.context_base in in_set
    ]
    groups = tuple(p.item_id for p, _ in pairs)
    return Contrast(
        "sad_context",
        "sad minus unmodified variant of the same item and template, last prompt token",
        pos=tuple(Ref("base", "prompts", p.prompt_id) for p, _ in pairs),
        neg=tuple(Ref("base", "prompts", str(base)) for _, base in pairs),
        pos_groups=groups,
        neg_groups=groups,
        paired=True,
    )


def belief_prompts(prompts: Sequence[Prompt]) -> list[Prompt]:
    """Prompts with a wrong belief (stated or doubting the right answer)."""
    return [p for p in prompts if p.template in BELIEF_TEMPLATES]


def sycophancy_contrast(labels: pd.DataFrame, model: str = "base") -> Contrast:
    """Belief prompts answered with the user's wrong answer minus those that hold the right one.

    ``labels``: forced-choice results (:func:`interp.evaluate.forced_choice`) with ``prompt_id``,
    ``item_id`` and ``agrees_with_user`` (NaN rows, without a belief, are ignored)."""
    for col in ("prompt_id", "item_id", "agrees_with_user"):
        if col not in labels.columns:
            raise ContrastError(
                f"sycophancy labels need a {col!r} column; found {list(labels.columns)}"
            )
    rows = labels[labels["agrees_with_user"].notna()]
    agree, hold = rows[rows["agrees_with_user"] == 1], rows[rows["agrees_with_user"] == 0]
    side = "adapter" if model == "adapter" else "base"
    return Contrast(
        "sycophancy",
        "belief prompts the model agrees with minus those it holds against, last prompt token",
        pos=tuple(Ref(side, "prompts", str(i)) for i in agree["prompt_id"]),  # type: ignore[arg-type]
        neg=tuple(Ref(side, "prompts", str(i)) for i in hold["prompt_id"]),  # type: ignore[arg-type]
        pos_groups=tuple(str(g) for g in agree["item_id"]),
        neg_groups=tuple(str(g) for g in hold["item_id"]),
        paired=False,
    )


def sycophancy_ab_contrast(prompts: Sequence[Prompt]) -> Contrast:
    """CAA variant: the answer letter that agrees with the user minus the one that holds."""
    chosen = ab_prompts(prompts)
    groups = tuple(p.item_id for p in chosen)
    order = ab_order(chosen)
    return Contrast(
        "sycophancy_ab",
        "A/B question: reply letter agreeing with the user's wrong belief minus the correct letter",
        pos=tuple(Ref("base", "ab", f"{p.prompt_id}/agree") for p in chosen),
        neg=tuple(Ref("base", "ab", f"{p.prompt_id}/hold") for p in chosen),
        pos_groups=groups,
        neg_groups=groups,
        paired=True,
        strata=tuple((item, "agree=A" if a else "agree=B") for item, a in sorted(order.items())),
    )


def label_balance(labels: pd.DataFrame) -> dict[str, int]:
    """How many belief prompts agree / hold (for reports)."""
    values = labels["agrees_with_user"].dropna().to_numpy()
    return {"agree": int(np.sum(values == 1)), "hold": int(np.sum(values == 0))}
