"""An arm of a causal experiment: one model variant with its edits per site, and how it is scored.

An :class:`Arm` is a model (``original`` or ``warm``), a label for its intervention (``none`` for
the unedited model), a backend, a system prompt, and one or more *edit sets*: each a
``{Site: Edit}`` map installed with ``backend.hooked(edit=...)``. Several edit sets are
replicates of one control (random directions, random SAE latents); their readings are pooled per
prompt (the mean), so a control is one paired observation per prompt, like any other arm.

Every kind of edit becomes an edit set: a steering :class:`~interp.steer.Intervention` through
:func:`intervention_edits`, an SAE latent edit through :func:`interp.sae.intervene.sae_edit`.
Scoring is the same for all of them:

- :func:`score_prompts`: forced-choice error and agreement with the user's wrong belief, per
  prompt, with the prompt's verdict condition;
- :func:`score_warmth`: warmth of greedy replies to held-out requests (condition ``neutral``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from interp.chat import as_messages
from interp.data.prompt_sets import Prompt
from interp.data.templates import BELIEF_TEMPLATES
from interp.evaluate import forced_choice
from interp.generate import SamplingConfig, generate_replies
from interp.hooks.base import Backend, Edit
from interp.sites import Site
from interp.steer import Intervention, compose, edits_for

EditSet = Mapping[Site, Edit]
WarmthScorer = Callable[[list[str]], np.ndarray]
CONDITIONS = ("neutral", "sad", "wrong belief", "sad + wrong belief")


def condition_of(p: Prompt) -> str | None:
    """The verdict condition of a prompt (None: not one of the four cells)."""
    belief = p.template in BELIEF_TEMPLATES
    if p.template not in ("no_belief", *BELIEF_TEMPLATES):
        return None
    if p.condition == "unmodified":
        return "wrong belief" if belief else "neutral"
    if p.condition == "emotion:sad":
        return "sad + wrong belief" if belief else "sad"
    return None


@dataclass(frozen=True)
class Arm:
    """A model variant and its edits: ``edit_sets`` holds one ``{Site: Edit}`` per replicate."""

    model: str
    label: str
    backend: Backend
    system: str | None = None
    edit_sets: tuple[EditSet, ...] = ({},)

    def replicates(self, limit: int | None = None) -> tuple[EditSet, ...]:
        """The first ``limit`` edit sets (all when None)."""
        return self.edit_sets if limit is None else self.edit_sets[:limit]


def intervention_edits(
    interventions: Sequence[Intervention], norms: Mapping[int, float] | None = None
) -> dict[Site, Edit]:
    """One edit set from steering interventions at every position (composed per site, in order).

    ``norms`` (typical residual norm per layer) is needed by ``add`` / ``ablate_add``.
    """
    return compose(edits_for(iv, norms) for iv in interventions)


def score_prompts(arm: Arm, prompts: Sequence[Prompt], batch_size: int = 16) -> pd.DataFrame:
    """Per prompt (pooled over the arm's edit sets): ``prompt_id, item_id, error,
    agrees_with_user, p_incorrect, condition, model, intervention``."""
    frames = []
    for edits in arm.edit_sets:
        with arm.backend.hooked(edit=edits):
            df = forced_choice(arm.backend, prompts, system=arm.system, batch_size=batch_size)
        frames.append(df[["prompt_id", "item_id", "error", "agrees_with_user", "p_incorrect"]])
    pooled = pd.concat(frames).groupby(["prompt_id", "item_id"], sort=False, as_index=False).mean()
    cond = {p.prompt_id: condition_of(p) for p in prompts}
    pooled["condition"] = pooled["prompt_id"].map(cond)
    pooled["model"], pooled["intervention"] = arm.model, arm.label
    return pooled


def greedy_replies(
    backend: Backend,
    requests: Sequence[str],
    system: str | None,
    max_new_tokens: int,
    batch_size: int = 8,
) -> list[str]:
    """Greedy replies to single-turn requests (a system message first when given)."""
    convs = [tuple(as_messages(r, system=system)) for r in requests]
    sampling = SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.0, batch_size=batch_size)
    return generate_replies(backend, convs, sampling)


def score_warmth(
    arm: Arm,
    requests: Sequence[tuple[str, str]],
    warmth: WarmthScorer,
    *,
    max_new_tokens: int,
    batch_size: int = 8,
    max_replicates: int | None = None,
) -> pd.DataFrame:
    """Warmth of the arm's greedy replies to held-out requests ``(id, text)``, averaged over
    (at most ``max_replicates`` of) its edit sets: rows ``item_id, prompt_id, warmth, condition
    ("neutral"), model, intervention``."""
    texts = [t for _, t in requests]
    values = []
    for edits in arm.replicates(max_replicates):
        with arm.backend.hooked(edit=edits):
            replies = greedy_replies(arm.backend, texts, arm.system, max_new_tokens, batch_size)
        values.append(warmth(replies))
    ids = [i for i, _ in requests]
    return pd.DataFrame(
        {
            "item_id": ids,
            "prompt_id": ids,
            "warmth": np.mean(values, axis=0),
            "condition": "neutral",
            "model": arm.model,
            "intervention": arm.label,
        }
    )
