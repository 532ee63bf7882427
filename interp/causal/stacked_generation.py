"""Greedy replies under several edit sets at once: each edit set's copy of the prompts in one batch.

The verdict generates replies under every arm (its warmth measure, 40 null arms included, and its
generation measure). One arm at a time, a small model on a CPU spends much of each decoding step
on per-call work rather than arithmetic; :func:`stacked_greedy` repeats a chunk of conversations
once per edit set into one batch (edit set ``i`` owns block ``i`` of the rows) and installs
:func:`block_edits`, which applies each set's edits to its own block only. Every row sees the same
tokens, padding and positions as it would alone, so the replies are the same as one set at a time
(up to the floating-point effects of a different batch shape), in fewer, larger steps.

Edits must act on each row alone (every :mod:`interp.steer` intervention does: it adds to or
projects each token's activation); an edit that mixes rows, such as a patch that indexes stored
activations by batch row, cannot be stacked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from interp.chat import Message, encode_chat
from interp.generate import SamplingConfig, left_pad
from interp.hooks.base import Backend, Edit, HookError
from interp.length_batches import length_batches
from interp.sites import Site, sort_sites


def block_edits(edit_sets: Sequence[Mapping[Site, Edit]]) -> dict[Site, Edit]:
    """One edit set for a batch of ``len(edit_sets)`` equal blocks of rows: at every site any
    set edits, block ``i`` (rows ``i*n .. (i+1)*n - 1`` of ``batch = k*n``) goes through
    ``edit_sets[i]``'s edit there (unchanged where that set has none).

    Raises HookError at run time when the batch is not a multiple of the number of sets."""
    k = len(edit_sets)
    if k == 0:
        raise ValueError("block_edits needs at least one edit set")

    def at(site: Site) -> Edit:
        fns = [e.get(site) for e in edit_sets]

        def edit(
            x: Float[Tensor, "batch pos d_model"], s: Site
        ) -> Float[Tensor, "batch pos d_model"]:
            if x.shape[0] % k:
                raise HookError(
                    f"{s}: a batch of {x.shape[0]} rows cannot be split into {k} equal blocks"
                )
            n = x.shape[0] // k
            blocks = [
                x[i * n : (i + 1) * n] if f is None else f(x[i * n : (i + 1) * n], s)
                for i, f in enumerate(fns)
            ]
            return torch.cat(blocks, dim=0)

        return edit

    return {site: at(site) for site in sort_sites({s for e in edit_sets for s in e})}


def stacked_greedy(
    backend: Backend,
    conversations: Sequence[Sequence[Message]],
    edit_sets: Sequence[Mapping[Site, Edit]],
    max_new_tokens: int,
    max_rows: int = 64,
) -> list[list[str]]:
    """``replies[i][j]``: the greedy reply to ``conversations[j]`` (each ending with a user turn)
    under ``edit_sets[i]``. Batches hold at most ``max_rows`` rows (at least one conversation
    under each set of a group): up to ``max_rows`` sets per group, the conversations in chunks of
    ``max_rows // group size`` conversations of similar length (:mod:`interp.length_batches`)."""
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, found {max_rows}")
    tok = backend.loaded.tokenizer
    encoded = [encode_chat(tok, c, add_generation_prompt=True).input_ids for c in conversations]
    greedy = SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.0).generate_kwargs()
    replies: list[list[str]] = [[""] * len(encoded) for _ in edit_sets]
    if not encoded:
        return replies
    per_group = min(len(edit_sets), max_rows)
    per_chunk = max(1, max_rows // per_group)
    chunks = length_batches([len(e) for e in encoded], per_chunk)
    for first in range(0, len(edit_sets), per_group):
        group = edit_sets[first : first + per_group]
        with backend.hooked(edit=block_edits(group)), torch.no_grad():
            for members in chunks:
                chunk = [encoded[j] for j in members]
                ids, mask = left_pad(chunk * len(group), tok.pad_token_id, backend.loaded.device)
                new = backend.generate(ids, mask, **greedy)
                texts = tok.batch_decode(new, skip_special_tokens=True)
                for i in range(len(group)):
                    block = texts[i * len(chunk) : (i + 1) * len(chunk)]
                    for j, text in zip(members, block, strict=True):
                        replies[first + i][j] = text.strip()
    return replies
