"""What an edit costs the model, measured beside what it changes.

Two measures per edit set, each per unit (prompt or text) so that they get item-bootstrap CIs
and can be compared with the same measures of a null:

- ``kl_continuation``: KL(unedited || edited) of the next-token distributions over the unedited
  model's own greedy continuation of a prompt (the answer and the tokens after it), teacher
  forced, averaged over those tokens;
- ``heldout_loss_increase``: next-token loss on held-out neutral text (assistant tokens of
  request / neutral-reply conversations) under the edit minus without it.

The unedited model's continuations and logits are computed once per batch and shared by every
edit set of the same backend. Edit sets that edit one residual site (``resid_pre`` / ``resid_post``
of one layer, every position: each verdict arm and each sweep setting) are scored from the clean
residual at that site, computed once per batch (:class:`~interp.causal.layer_runner.LayerRunner`),
running only the layers above it and unembedding only the scored positions; the rest go through the
hooked forward. The two engines agree to float rounding (tested).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor

from interp.causal.arms import EditSet
from interp.causal.layer_runner import LayerRunner, runner_or_none
from interp.causal.suffix_arms import block_after, residual_site
from interp.chat import Message, encode_chat
from interp.generate import left_pad
from interp.hooks.base import Backend, eos_ids
from interp.scoring import shared_prefix_length
from interp.sites import Site

MEASURES = ("kl_continuation", "heldout_loss_increase")
ROW_COLUMNS = ["label", "replicate", "measure", "unit_id", "value"]


@dataclass(frozen=True)
class DamageUnits:
    """Token sequences to measure damage on: ids, and per sequence the ``[start, end)`` of the
    positions whose next token is scored (predicting tokens ``start+1 .. end``)."""

    ids: tuple[str, ...]
    sequences: tuple[tuple[int, ...], ...]
    spans: tuple[tuple[int, int], ...]

    def after(self, n: int) -> DamageUnits:
        """The units without their first ``n`` tokens (a shared prefix run apart), spans
        counted from there; refused where a unit scores a position inside them."""
        if any(s < n for s, _ in self.spans):
            raise ValueError(f"a unit scores from position {min(self.spans)[0]}, inside {n}")
        return DamageUnits(
            self.ids,
            tuple(seq[n:] for seq in self.sequences),
            tuple((s - n, e - n) for s, e in self.spans),
        )


def continuation_units(
    backend: Backend,
    conversations: Sequence[tuple[str, Sequence[Message]]],
    *,
    max_new_tokens: int,
    batch_size: int = 8,
) -> DamageUnits:
    """The unedited model's greedy continuations of ``(id, conversation)`` prompts (each ending
    with a user turn) as scored units: the positions that predict the continuation's tokens."""
    tok = backend.loaded.tokenizer
    seqs, spans = [], []
    for i in range(0, len(conversations), batch_size):
        chunk = conversations[i : i + batch_size]
        prompts = [
            encode_chat(tok, list(c), add_generation_prompt=True).input_ids for _, c in chunk
        ]
        replies = _greedy_ids(backend, prompts, max_new_tokens)
        for p, r in zip(prompts, replies, strict=True):
            seqs.append(tuple(p) + tuple(r))
            spans.append((len(p) - 1, len(p) - 1 + len(r)))
    return DamageUnits(tuple(i for i, _ in conversations), tuple(seqs), tuple(spans))


def _greedy_ids(
    backend: Backend, prompts: Sequence[list[int]], max_new_tokens: int
) -> list[list[int]]:
    """Greedy continuations through the backend, each cut after its first end-of-sequence id
    (the backend pads what follows)."""
    ids, mask = left_pad(prompts, backend.loaded.tokenizer.pad_token_id, backend.loaded.device)
    new = backend.generate(ids, mask, max_new_tokens=max_new_tokens, do_sample=False)
    stops = set(eos_ids(backend.loaded))
    replies = []
    for row in new.tolist():
        end = next((i + 1 for i, t in enumerate(row) if t in stops), len(row))
        replies.append(row[:end])
    return replies


def text_units(tokenizer: object, texts: Sequence[tuple[str, str, str]]) -> DamageUnits:
    """Held-out ``(id, request, reply)`` conversations: the positions predicting the reply."""
    seqs, spans = [], []
    for _, request, reply in texts:
        enc = encode_chat(
            tokenizer,
            [Message("user", request), Message("assistant", reply)],
            add_generation_prompt=False,
        )
        span = enc.span_of("assistant")
        seqs.append(tuple(enc.input_ids))
        spans.append((span.tok_start - 1, span.tok_end - 1))
    return DamageUnits(tuple(i for i, _, _ in texts), tuple(seqs), tuple(spans))


def _logprobs(backend: Backend, units: DamageUnits, index: Sequence[int]) -> list[Tensor]:
    tok = backend.loaded.tokenizer
    chunk = [list(units.sequences[i]) for i in index]
    ids, mask = left_pad(chunk, tok.pad_token_id, backend.loaded.device)
    logits = backend.forward(ids, mask)
    out = []
    for row, i in enumerate(index):
        off = ids.shape[1] - len(units.sequences[i])
        s, e = units.spans[i]
        out.append(torch.log_softmax(logits[row, off + s : off + e].float(), dim=-1).cpu())
    return out


def _targets(units: DamageUnits, i: int) -> Tensor:
    s, e = units.spans[i]
    return torch.tensor(units.sequences[i][s + 1 : e + 1])


def _value(measure: str, clean: Tensor, edited: Tensor, targets: Tensor) -> float:
    """One unit's damage: mean KL(clean || edited) over its positions, or the edited minus the
    clean mean next-token loss of its targets."""
    if measure == "kl_continuation":
        return float((clean.exp() * (clean - edited)).sum(-1).mean())
    t = targets[:, None]
    return float(-edited.gather(1, t).mean() + clean.gather(1, t).mean())


@torch.no_grad()
def damage_rows(
    backend: Backend,
    edit_sets: Mapping[str, Sequence[EditSet]],
    continuations: DamageUnits,
    heldout: DamageUnits,
    *,
    batch_size: int = 8,
    suffix: bool = True,
) -> pd.DataFrame:
    """Per edit set (``label`` -> its replicates) and unit: ``label, replicate, measure, unit_id,
    value`` with measures ``kl_continuation`` and ``heldout_loss_increase``.

    ``suffix``: labels whose edit sets all edit one residual site are scored from the clean
    residual there (:func:`damage_rows_at_site`, grouped by site); False, or a model the layer
    runner does not know: every label through the hooked forward."""
    groups: dict[Site | None, dict[str, Sequence[EditSet]]] = {}
    unedited = [label for label, sets in edit_sets.items() if not any(sets)]
    for label, sets in edit_sets.items():
        if label not in unedited:
            groups.setdefault(residual_site(sets) if suffix else None, {})[label] = sets
    # labels without an edit ride with the first suffix group (their value is 0 by definition)
    home = next((site for site in groups if site is not None), None)
    for label in unedited:
        groups.setdefault(home, {})[label] = edit_sets[label]
    runner = runner_or_none(backend.loaded) if any(site is not None for site in groups) else None
    frames = []
    for site, group in groups.items():
        if site is None or runner is None:
            frames.append(_hooked_rows(backend, group, continuations, heldout, batch_size))
        else:
            frames.append(
                damage_rows_at_site(runner, group, site, continuations, heldout, batch_size)
            )
    if not frames:
        return pd.DataFrame(columns=ROW_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def _hooked_rows(
    backend: Backend,
    edit_sets: Mapping[str, Sequence[EditSet]],
    continuations: DamageUnits,
    heldout: DamageUnits,
    batch_size: int,
) -> pd.DataFrame:
    """:func:`damage_rows` by full forwards with each edit set's hooks installed."""
    rows = []
    for measure, units in zip(MEASURES, (continuations, heldout), strict=True):
        for start in range(0, len(units.ids), batch_size):
            index = list(range(start, min(start + batch_size, len(units.ids))))
            clean = _logprobs(backend, units, index)
            for label, sets in edit_sets.items():
                for rep, edits in enumerate(sets):
                    with backend.hooked(edit=edits):
                        edited = _logprobs(backend, units, index)
                    for i, c, e in zip(index, clean, edited, strict=True):
                        value = _value(measure, c, e, _targets(units, i))
                        rows.append((label, rep, measure, units.ids[i], value))
    return pd.DataFrame(rows, columns=ROW_COLUMNS)


def _span_logprobs(
    runner: LayerRunner, final: Tensor, units: DamageUnits, index: Sequence[int]
) -> list[Tensor]:
    """Per unit of ``index``, the log-softmax at its scored positions, from the final residual
    ``(batch, pos, d_model)`` of its left-padded batch (the LM head only there)."""
    width = final.shape[1]
    out = []
    for row, i in enumerate(index):
        s, e = units.spans[i]
        off = width - len(units.sequences[i])
        logits = runner.logits(final[row, off + s : off + e])
        out.append(torch.log_softmax(logits.float(), dim=-1).cpu())
    return out


@torch.no_grad()
def damage_rows_at_site(
    runner: LayerRunner,
    edit_sets: Mapping[str, Sequence[EditSet]],
    site: Site,
    continuations: DamageUnits,
    heldout: DamageUnits,
    batch_size: int = 8,
    share_prefix: bool = True,
) -> pd.DataFrame:
    """:func:`damage_rows` for edit sets that edit only ``site`` (an empty set is the unedited
    model): per batch the residual entering the first block after ``site`` is computed once;
    each edit set edits a copy and runs the blocks above; logits only at the scored positions.
    ``share_prefix``: the tokens every unit of a measure starts with (the chat template's
    system header) run once, and once per edit set above the site under its edit
    (:class:`~interp.causal.layer_runner.PrefixStates`), where the model allows."""
    for label, sets in edit_sets.items():
        if any(set(edits) - {site} for edits in sets):
            raise ValueError(f"edit set {label!r} edits sites other than {site}")
    entry = block_after(site)
    loaded = runner.loaded
    rows = []
    for measure, whole in zip(MEASURES, (continuations, heldout), strict=True):
        n = _shared_length(whole) if share_prefix and runner.can_pack else 0
        prefix = runner.prefix_states(whole.sequences[0][:n]) if n else None
        units = whole.after(n)
        edited_prefix = {
            (label, rep): runner.edited_prefix(prefix, entry, edits[site], site)
            for label, sets in edit_sets.items()
            for rep, edits in enumerate(sets)
            if edits and prefix is not None
        }
        for start in range(0, len(units.ids), batch_size):
            index = list(range(start, min(start + batch_size, len(units.ids))))
            chunk = [list(units.sequences[i]) for i in index]
            ids, mask = left_pad(chunk, loaded.tokenizer.pad_token_id, loaded.device)
            h = runner.embed_tokens(ids)
            prep = runner.prepare(mask, h, prefix=prefix)
            below = runner.run(h, prep, 0, entry, prefix=prefix)
            final = runner.run(below, prep, entry, prefix=prefix)
            clean = _span_logprobs(runner, final, units, index)
            for label, sets in edit_sets.items():
                for rep, edits in enumerate(sets):
                    if edits:
                        final = runner.run(
                            edits[site](below.clone(), site),
                            prep,
                            entry,
                            prefix=edited_prefix.get((label, rep)),
                        )
                        edited = _span_logprobs(runner, final, units, index)
                    else:
                        edited = clean
                    for i, c, e in zip(index, clean, edited, strict=True):
                        value = _value(measure, c, e, _targets(units, i))
                        rows.append((label, rep, measure, units.ids[i], value))
    return pd.DataFrame(rows, columns=ROW_COLUMNS)


def _shared_length(units: DamageUnits) -> int:
    """How many leading tokens every unit shares before its first scored position."""
    return shared_prefix_length(units.sequences, [s for s, _ in units.spans])
