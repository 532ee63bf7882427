"""What an edit costs the model, measured beside what it changes.

Two measures per edit set, each per unit (prompt or text) so that they get item-bootstrap CIs
and can be compared with the same measures of a null:

- ``kl_continuation``: KL(unedited || edited) of the next-token distributions over the unedited
  model's own greedy continuation of a prompt (the answer and the tokens after it), teacher
  forced, averaged over those tokens;
- ``heldout_loss_increase``: next-token loss on held-out neutral text (assistant tokens of
  request / neutral-reply conversations) under the edit minus without it.

The unedited model's continuations and logits are computed once per batch and shared by every
edit set of the same backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor

from interp.causal.arms import EditSet
from interp.chat import Message, encode_chat
from interp.generate import left_pad
from interp.hooks.base import Backend, eos_ids


@dataclass(frozen=True)
class DamageUnits:
    """Token sequences to measure damage on: ids, and per sequence the ``[start, end)`` of the
    positions whose next token is scored (predicting tokens ``start+1 .. end``)."""

    ids: tuple[str, ...]
    sequences: tuple[tuple[int, ...], ...]
    spans: tuple[tuple[int, int], ...]


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


@torch.no_grad()
def damage_rows(
    backend: Backend,
    edit_sets: Mapping[str, Sequence[EditSet]],
    continuations: DamageUnits,
    heldout: DamageUnits,
    *,
    batch_size: int = 8,
) -> pd.DataFrame:
    """Per edit set (``label`` -> its replicates) and unit: ``label, replicate, measure, unit_id,
    value`` with measures ``kl_continuation`` and ``heldout_loss_increase``."""
    rows = []
    for measure, units in (("kl_continuation", continuations), ("heldout_loss_increase", heldout)):
        for start in range(0, len(units.ids), batch_size):
            index = list(range(start, min(start + batch_size, len(units.ids))))
            clean = _logprobs(backend, units, index)
            for label, sets in edit_sets.items():
                for rep, edits in enumerate(sets):
                    with backend.hooked(edit=edits):
                        edited = _logprobs(backend, units, index)
                    for i, c, e in zip(index, clean, edited, strict=True):
                        if measure == "kl_continuation":
                            value = float((c.exp() * (c - e)).sum(-1).mean())
                        else:
                            t = _targets(units, i)
                            value = float(
                                -e.gather(1, t[:, None]).mean() + c.gather(1, t[:, None]).mean()
                            )
                        rows.append(
                            {
                                "label": label,
                                "replicate": rep,
                                "measure": measure,
                                "unit_id": units.ids[i],
                                "value": value,
                            }
                        )
    return pd.DataFrame(rows, columns=["label", "replicate", "measure", "unit_id", "value"])
