"""Forced choice for many arms that edit one residual site: the clean prefix runs once.

Every edited arm of the verdict protocol (the removal, zero-ablation, and the 20 matched random
directions of its null) edits the same model at the same layer. Below that layer their forwards
are identical, so per batch of prompts :func:`score_arms_at_site` runs the unedited model up to
the edited site once (:class:`~interp.causal.layer_runner.LayerRunner`), then, for each arm's edit
set, applies the edit to a copy of that residual and runs only the layers above it, unembedding
only the candidate positions. A prompt's two candidates share one packed row
(:mod:`interp.causal.packing`), so the prompt is computed once, as the hooked path's key/value
cache computes it once. At the protocol's layer 28 of 30 an arm costs about a tenth of a full
forward.

The numbers are those of :func:`interp.causal.arms.score_prompts` (the hooked forward through
:func:`interp.evaluate.forced_choice`): the same candidate tokens, length-normalised
log-probabilities, ``error`` (wrong answer preferred), ``agrees_with_user`` (on belief prompts)
and ``p_incorrect`` (two-way softmax). They agree to float rounding (tested against the hooked
path under an edit); :func:`engine_agreement` measures the agreement on a run's own prompts so
that a run records it.

Only edits at ``resid_pre`` or ``resid_post`` of one layer, applied at every position, qualify
(:func:`shared_site`), and only where the engine is cheaper than the hooked path
(:func:`suffix_pays`); anything else is scored by the hooked path.

The tokens every prompt starts with (the chat template's system header: 24 of a verdict row's
~70 tokens on the embedded model) run once per call as a
shared prefix (:class:`~interp.causal.layer_runner.PrefixStates`), and once more per edit set
above the site under its edit (the edit acts on the prefix's positions as on every other); each
batch runs only the rows' own tokens, reading the prefix's keys and values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.causal.arms import Arm, EditSet, condition_of
from interp.causal.layer_runner import LayerRunner, PrefixStates, runner_or_none
from interp.causal.packing import Packing, batch_rows
from interp.causal.readouts import TokenRows, build_rows, read_batch
from interp.data.prompt_sets import Prompt
from interp.data.templates import BELIEF_TEMPLATES
from interp.length_batches import length_batches
from interp.scoring import ChoiceScores
from interp.sites import Site

SUFFIX_KINDS = ("resid_pre", "resid_post")
SCORE_COLUMNS = (
    "prompt_id",
    "item_id",
    "error",
    "agrees_with_user",
    "p_incorrect",
    "condition",
    "model",
    "intervention",
)


def residual_site(edit_sets: Sequence[EditSet]) -> Site | None:
    """The one residual site every edit set of ``edit_sets`` edits, or None when they edit
    several sites, a site other than ``resid_pre`` / ``resid_post``, or one of them nothing."""
    sites = {site for edits in edit_sets for site in edits}
    if len(sites) != 1 or any(not edits for edits in edit_sets):
        return None
    (site,) = sites
    return site if site.kind in SUFFIX_KINDS else None


def shared_site(arms: Sequence[Arm]) -> Site | None:
    """The one residual site every edit set of every arm edits (:func:`residual_site`)."""
    return residual_site([edits for arm in arms for edits in arm.edit_sets])


def runner_for(arm: Arm) -> LayerRunner | None:
    """A layer runner on the arm's model, or None where the runner does not know the layout."""
    return runner_or_none(arm.backend.loaded)


def block_after(site: Site) -> int:
    """The index of the first block that runs after the residual at ``site`` (``resid_pre`` /
    ``resid_post``)."""
    return site.layer if site.kind == "resid_pre" else site.layer + 1


@dataclass
class CleanResiduals:
    """The unedited model's residual at ``site`` for batch rows already run, so that a later
    pass over any of the same prompts (the verdict's null, on a subset of the evaluation
    prompts its target arms ran on) starts above the site instead of running the layers below
    it again (:func:`score_arms_at_site`'s ``clean``).

    Keyed by a row's real tokens, their position ids and their branches (a packed row is one
    prompt with its candidates), so a row is found whatever batch it lands in; each value is
    ``(real tokens, d_model)`` on the CPU. Holds about prompts x tokens x d_model values (the
    embedded study's 608 prompts: about 70 MB in float32). ``backend`` / ``system``: the model
    whose residuals these are; ``prefix``: the shared prefix the stored rows continue (their
    tokens are those after it; its states are kept too), fixed by the first pass that stores
    rows."""

    site: Site
    backend: object
    system: str | None
    rows: dict[tuple[tuple[int, ...], ...], Tensor] = field(default_factory=dict)
    prefix: PrefixStates | None = None

    def covers(self, keys: Sequence[tuple[tuple[int, ...], ...]]) -> bool:
        """Whether every row of a batch is stored."""
        return all(k in self.rows for k in keys)

    def keep(
        self,
        keys: Sequence[tuple[tuple[int, ...], ...]],
        clean: Float[Tensor, "batch pos d_model"],
        mask: Int[Tensor, "batch pos"],
    ) -> None:
        """Store each row's residual at its real (unpadded) positions."""
        for r, key in enumerate(keys):
            self.rows[key] = clean[r, mask[r].bool()].detach().cpu()

    def assemble(
        self,
        keys: Sequence[tuple[tuple[int, ...], ...]],
        mask: Int[Tensor, "batch pos"],
        like: Tensor,
    ) -> Float[Tensor, "batch pos d_model"]:
        """A batch's residual from stored rows (zeros at padding, which no real position
        reads), on ``like``'s device and dtype."""
        out = torch.zeros((*mask.shape, like.shape[-1]), dtype=like.dtype, device=like.device)
        for r, key in enumerate(keys):
            out[r, mask[r].bool()] = self.rows[key].to(like.device, like.dtype)
        return out


def row_keys(
    ids: Int[Tensor, "batch pos"], mask: Int[Tensor, "batch pos"], packing: Packing | None
) -> list[tuple[tuple[int, ...], ...]]:
    """Per batch row, what its residual depends on: its real tokens, and, packed, their
    position ids and branches (:class:`CleanResiduals`' keys)."""
    keys = []
    for r in range(ids.shape[0]):
        real = mask[r].bool()
        parts = [tuple(ids[r, real].tolist())]
        if packing is not None:
            parts += [
                tuple(packing.position_ids[r, real].tolist()),
                tuple(packing.branch[r, real].tolist()),
            ]
        keys.append(tuple(parts))
    return keys


def suffix_pays(n_arms: int, site: Site, n_layers: int, packed: bool = True) -> bool:
    """Whether :func:`score_arms_at_site` costs fewer block-rows than the hooked path for
    ``n_arms`` arms editing ``site`` (with the identity check arm that rides along).

    The hooked path runs about one row per prompt and arm through every block (the prompt
    once, its key/value cache shared by the short candidates). The suffix engine runs the
    blocks below the site once and the blocks above it per arm, on one packed row per prompt
    (``packed``: the prompt once, each candidate a branch, :mod:`interp.causal.packing`) or on
    two rows (prompt + each candidate; models whose sliding-window layers refuse packing). So
    packed, it pays for two or more arms at layer 28 of 30 (32 against 60) and for the null's 20
    arms at the middle layer (310 against 600), not for one arm (31 against 30); unpacked, it
    pays for the null's 20 arms at layer 28 (100 against 600), not for two arms there (64
    against 60) nor for 20 at the middle layer (620 against 600)."""
    rows = 1 if packed else 2
    entry = block_after(site)
    suffix = rows * entry + rows * (n_arms + 1) * (n_layers - entry)
    return suffix < n_arms * n_layers


def score_arms_at_site(
    unedited: Arm,
    arms: Sequence[Arm],
    prompts: Sequence[Prompt],
    site: Site,
    batch_size: int = 16,
    runner: LayerRunner | None = None,
    pack: bool = True,
    clean: CleanResiduals | None = None,
    share_prefix: bool = True,
) -> pd.DataFrame:
    """Per arm and prompt, the rows of :func:`interp.causal.arms.score_prompts` (pooled over
    each arm's edit sets): ``prompt_id, item_id, error, agrees_with_user, p_incorrect,
    condition, model, intervention``.

    ``unedited``: the model every arm edits (its backend and system prompt; its own edit sets
    are ignored); ``arms``: arms of that model whose every edit set edits only ``site``
    (:func:`shared_site`). ``batch_size`` counts prompts; each is one packed row (the prompt
    once, each candidate a branch: :mod:`interp.causal.packing`) where the runner can pack
    and ``pack`` asks for it, else two rows; prompts of similar length are batched together
    (:mod:`interp.length_batches`), rows come back in the prompts' order. ``clean``: a store
    of this model's residuals at ``site`` (:class:`CleanResiduals`); a batch whose rows are all
    in it starts from them, any other batch runs the layers below the site and is stored.
    ``share_prefix``: the tokens every prompt starts with run once (module doc) where the
    runner allows (full attention in every layer).
    """
    for arm in arms:
        if arm.backend is not unedited.backend or arm.system != unedited.system:
            raise ValueError(
                f"arm {arm.model}/{arm.label} does not edit the model of {unedited.model} "
                "(another backend or system prompt): score it on its own"
            )
        if any(set(edits) != {site} for edits in arm.edit_sets):
            raise ValueError(f"arm {arm.model}/{arm.label} edits sites other than {site}")
    if not prompts:
        raise ValueError("no prompts to score")
    if clean is not None and (
        clean.site != site
        or clean.backend is not unedited.backend
        or clean.system != unedited.system
    ):
        raise ValueError(
            f"the clean residuals are {clean.site} of another model or system prompt, not "
            f"{site} of {unedited.model}"
        )
    runner = runner or LayerRunner(unedited.backend.loaded)
    loaded = unedited.backend.loaded
    study = build_rows(loaded.tokenizer, prompts, system=unedited.system)
    n_tok = np.array([len(t) for t in study.rows.targets], dtype=float)
    sums = {
        (a, e): np.zeros(len(study.rows))
        for a in range(len(arms))
        for e in range(len(arms[a].edit_sets))
    }
    start = block_after(site)
    pad = loaded.tokenizer.pad_token_id
    rows, store = study.rows, clean
    tokens = _prefix_tokens(rows, clean) if share_prefix and runner.can_pack else ()
    kept = None if clean is None else clean.prefix
    if kept is not None and kept.tokens == tokens:
        prefix: PrefixStates | None = kept
    else:
        prefix = runner.prefix_states(tokens) if tokens else None
    if clean is not None and clean.rows and (() if kept is None else kept.tokens) != tokens:
        store = None  # stored after another prefix: this call neither reads nor adds to them
    elif clean is not None:
        clean.prefix = prefix
    rows = rows.after(len(tokens))
    # per arm and edit set, the prefix's keys and values above the site under its edit
    edited = [
        [
            None if prefix is None else runner.edited_prefix(prefix, start, edits[site], site)
            for edits in arm.edit_sets
        ]
        for arm in arms
    ]
    # a prompt's packed length: its prompt row plus the other candidate's tokens
    lengths = [len(rows.ids[2 * i]) + len(rows.targets[2 * i + 1]) for i in range(len(prompts))]
    with torch.no_grad():
        for members in length_batches(lengths, batch_size):
            index = [r for i in members for r in (2 * i, 2 * i + 1)]
            batch = rows.subset(index)
            ids, mask, gather, packing = batch_rows(
                batch, pad, loaded.device, pack and runner.can_pack
            )
            keys = row_keys(ids, mask, packing) if store is not None else []
            h = runner.embed_tokens(ids)
            prep = runner.prepare(mask, h, packing, prefix)
            if store is not None and store.covers(keys):
                resid = store.assemble(keys, mask, h)
            else:
                resid = runner.run(h, prep, 0, start, prefix=prefix)
                if store is not None:
                    store.keep(keys, resid, mask)
            for a, arm in enumerate(arms):
                for e, edits in enumerate(arm.edit_sets):
                    final = runner.run(
                        edits[site](resid.clone(), site), prep, start, prefix=edited[a][e]
                    )
                    got = read_batch(runner.logits_at(final), gather)
                    sums[(a, e)][index] = got.logprob_sum.numpy()
    frames = []
    for a, arm in enumerate(arms):
        per_set = [_choice_rows(prompts, sums[(a, e)], n_tok) for e in range(len(arm.edit_sets))]
        pooled = (
            pd.concat(per_set).groupby(["prompt_id", "item_id"], sort=False, as_index=False).mean()
        )
        pooled["condition"] = pooled["prompt_id"].map(
            {p.prompt_id: condition_of(p) for p in prompts}
        )
        pooled["model"], pooled["intervention"] = arm.model, arm.label
        frames.append(pooled[list(SCORE_COLUMNS)])
    return pd.concat(frames, ignore_index=True)


def _prefix_tokens(rows: TokenRows, clean: CleanResiduals | None) -> tuple[int, ...]:
    """The shared prefix of a call: the clean store's where it has one that every row starts
    with (so that its stored rows are found), else the rows' own
    (:meth:`TokenRows.shared_prefix`)."""
    if clean is not None and clean.prefix is not None and rows.starts_with(clean.prefix.tokens):
        return clean.prefix.tokens
    return rows.shared_prefix()


def _choice_rows(
    prompts: Sequence[Prompt], logprob_sum: np.ndarray, n_tokens: np.ndarray
) -> pd.DataFrame:
    """Forced-choice columns from per-row summed log-probabilities and token counts (rows
    alternate correct, incorrect), by :class:`interp.scoring.ChoiceScores`' own margin and
    two-way probability, as :func:`interp.evaluate.forced_choice` reads them."""
    scores = ChoiceScores(logprob_sum.reshape(-1, 2), n_tokens.reshape(-1, 2))
    error = (scores.margin(normalised=True) < 0).astype(float)
    belief = np.array([p.template in BELIEF_TEMPLATES for p in prompts])
    return pd.DataFrame(
        {
            "prompt_id": [p.prompt_id for p in prompts],
            "item_id": [p.item_id for p in prompts],
            "error": error,
            "agrees_with_user": np.where(belief, error, np.nan),
            "p_incorrect": scores.choice_probs(normalised=True)[:, 1],
        }
    )


def engine_agreement(suffix: pd.DataFrame, hooked: pd.DataFrame) -> dict[str, float]:
    """How far the two engines' rows for the same arm and prompts are apart: the largest
    ``|p_incorrect|`` difference and the number of prompts whose ``error`` differs (near-ties
    that rounding can flip), over the prompts both scored."""
    both = suffix.merge(hooked, on="prompt_id", suffixes=("_suffix", "_hooked"))
    if both.empty:
        raise ValueError("the two engines scored no prompt in common")
    diff = (both["p_incorrect_suffix"] - both["p_incorrect_hooked"]).abs()
    flips = (both["error_suffix"] != both["error_hooked"]).sum()
    return {
        "n_prompts": float(len(both)),
        "max_abs_p_diff": float(diff.max()),
        "error_flips": float(flips),
    }


def identity_edit(x: torch.Tensor, site: Site) -> torch.Tensor:
    """The edit that changes nothing: an arm with it at a site rides on that site's clean prefix
    and reads the unedited model."""
    return x


def score_arms(
    arms: Sequence[Arm],
    prompts: Sequence[Prompt],
    batch_size: int = 16,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Forced choice of every arm (the rows of :func:`interp.causal.arms.score_prompts`, arm by
    arm in the order given), the cheaper engine for each group.

    Arms of one model (backend and system prompt) whose edit sets all edit one residual site go
    through :func:`score_arms_at_site` together where that pays (:func:`suffix_pays`), and the
    model's unedited arm (no edits) rides on the same clean prefix as an identity edit; every
    other arm is scored by the hooked forward."""
    from interp.causal.arms import score_prompts

    say = progress or (lambda message: None)
    groups: dict[tuple[int, str | None, Site], list[int]] = {}
    for a, arm in enumerate(arms):
        site = residual_site(arm.edit_sets)
        if site is not None:
            groups.setdefault((id(arm.backend), arm.system, site), []).append(a)
    rows: dict[int, pd.DataFrame] = {}
    riding: set[int] = set()
    for (_, _, site), members in groups.items():
        first = arms[members[0]]
        unedited = [
            a
            for a, arm in enumerate(arms)
            if a not in riding
            and arm.backend is first.backend
            and arm.system == first.system
            and all(not edits for edits in arm.edit_sets)
        ][:1]
        runner = runner_for(first)
        n_sets = sum(len(arms[a].edit_sets) for a in members)
        # suffix_pays counts one identity arm besides the group: the unedited arm, when one
        # rides, or a spare one (then the estimate is one arm's suffix too high)
        if runner is None or not suffix_pays(n_sets, site, runner.n_layers, runner.can_pack):
            continue
        group = [arms[a] for a in members]
        for a in unedited:
            ride = ({site: identity_edit},)
            group.append(Arm(arms[a].model, arms[a].label, first.backend, first.system, ride))
        say(
            f"forced choice: {len(members)} {first.model} arms"
            + (" and the unedited model" if unedited else "")
            + f" on {len(prompts)} prompts (clean prefix once, then the layers above {site})"
        )
        scored = score_arms_at_site(first, group, prompts, site, batch_size, runner=runner)
        for a in [*members, *unedited]:
            rows[a] = scored[scored.intervention == arms[a].label]
            riding.add(a)
    for a, arm in enumerate(arms):
        if a not in rows:
            say(f"forced choice: {arm.model}/{arm.label} on {len(prompts)} prompts")
            rows[a] = score_prompts(arm, prompts, batch_size)
    return pd.concat([rows[a] for a in range(len(arms))], ignore_index=True)
