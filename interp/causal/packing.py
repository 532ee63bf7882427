"""Rows that share a prompt, packed into one row: the prompt once, each candidate a branch.

A forced choice scores two rows per prompt (prompt + correct answer, prompt + wrong answer), so
a forward over them computes the prompt twice. The hooked path avoids that with the prompt's
key/value cache (:func:`interp.scoring.score_choices`); the engines that run a slice of layers
from a saved residual (:class:`~interp.causal.layer_runner.LayerRunner`: the sweep's prefix reuse,
the verdict's clean-prefix arms) have no cache. They pack instead: one row holds the prompt
followed by every candidate's tokens, each candidate a *branch* whose tokens see the prompt and
the earlier tokens of their own branch only, at the positions they would have had alone (a
branch's position ids continue from the prompt's end). Every token therefore computes exactly
what it computes in its own row, for about half the tokens (a 75-token prompt and two 4-token
answers: 83 tokens instead of 158).

Rows are packed when they are identical up to and including their ``start`` position (the
position that predicts their first target: the prompt's last token) and their targets are the
tokens after it (forced-choice rows). Any other row (held-out text) stays a row of its own.
Edits that act on each position alone (every residual edit the sweep and the verdict apply)
see the same activations either way. The attention mask is the model's own causal and padding
mask intersected with the branch rule, built by ``transformers``' mask functions, so it takes
whatever form the attention implementation wants. Layers with a sliding window would measure
distances across branches, so :class:`~interp.causal.layer_runner.LayerRunner` refuses packing
there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from jaxtyping import Int
from torch import Tensor

from interp.causal.readouts import Gather, TokenRows, pad_batch


@dataclass(frozen=True)
class Packing:
    """How a packed batch departs from plain left-padded rows.

    ``position_ids``: ``(batch, pos)`` the position each token has in its own unpacked row;
    ``branch``: ``(batch, pos)`` 0 for prompt (and padding) tokens, ``b >= 1`` for the tokens of
    a row's ``b``-th candidate."""

    position_ids: Int[Tensor, "batch pos"]
    branch: Int[Tensor, "batch pos"]

    def mask_function(self, offset: int = 0) -> Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]:
        """A ``transformers`` mask function (``and``-ed with the causal one): a query may read a
        key of the prompt or of its own branch, never another branch. ``offset``: the length of
        a shared prefix the rows continue (:class:`~interp.causal.layer_runner.PrefixStates`):
        indices count it first, and every query may read it."""
        branch = self.branch

        def same_branch_or_prompt(
            batch_idx: Tensor, head_idx: Tensor, q_idx: Tensor, kv_idx: Tensor
        ) -> Tensor:
            kv = branch[batch_idx, (kv_idx - offset).clamp(min=0)]
            q = branch[batch_idx, (q_idx - offset).clamp(min=0)]
            return (kv_idx < offset) | (kv == 0) | (kv == q)

        return same_branch_or_prompt


def _packable(ids: tuple[int, ...], targets: tuple[int, ...], start: int) -> bool:
    """Whether a row is prompt + its targets (its targets are exactly the tokens after
    ``start``), so that its tail can become a branch."""
    return tuple(ids[start + 1 :]) == tuple(targets) and len(targets) > 0


def pack_batch(
    rows: TokenRows, pad_id: int, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor, Gather, Packing]:
    """``(input_ids, attention_mask, gather, packing)`` of ``rows`` packed (module doc),
    left-padded. ``gather.slot`` indexes ``rows`` (readings come back per original row);
    ``gather.row`` indexes the packed batch. Rows sharing a prompt need not be adjacent."""
    groups: dict[tuple[int, ...], list[int]] = {}
    order: list[tuple[int, ...] | int] = []
    for r, (seq, tgt, s) in enumerate(zip(rows.ids, rows.targets, rows.start, strict=True)):
        if _packable(seq, tgt, s):
            key = tuple(seq[: s + 1])
            if key not in groups:
                groups[key] = []
                order.append(key)
            groups[key].append(r)
        else:
            order.append(r)
    packed: list[list[int]] = []
    positions: list[list[int]] = []
    branches: list[list[int]] = []
    # per packed row and original row in it: the offsets (within the unpadded packed row) of
    # the positions that predict that row's targets, in order
    reads: list[list[tuple[int, list[int]]]] = []
    kl_reads: list[list[tuple[int, int]]] = []  # (original row, predictor offset)
    for entry in order:
        if isinstance(entry, int):
            alone, first = list(rows.ids[entry]), rows.start[entry]
            packed.append(alone)
            positions.append(list(range(len(alone))))
            branches.append([0] * len(alone))
            n = len(rows.targets[entry])
            reads.append([(entry, list(range(first, first + n)))])
            kl_reads.append([(entry, first)] if rows.keep_dist[entry] else [])
            continue
        prompt = list(entry)
        tokens, places, labels = list(prompt), list(range(len(prompt))), [0] * len(prompt)
        row_reads, row_kl = [], []
        for b, r in enumerate(groups[entry], start=1):
            tail = list(rows.targets[r])
            # target 0 is predicted by the prompt's last token, target j by this branch's j-1
            predictors = [len(prompt) - 1] + [len(tokens) + j for j in range(len(tail) - 1)]
            row_reads.append((r, predictors))
            if rows.keep_dist[r]:
                row_kl.append((r, len(prompt) - 1))
            tokens += tail
            places += [len(prompt) + j for j in range(len(tail))]
            labels += [b] * len(tail)
        packed.append(tokens)
        positions.append(places)
        branches.append(labels)
        reads.append(row_reads)
        kl_reads.append(row_kl)
    width = max(len(p) for p in packed)
    ids = torch.full((len(packed), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(packed), width), dtype=torch.long)
    pos_ids = torch.zeros((len(packed), width), dtype=torch.long)
    branch = torch.zeros((len(packed), width), dtype=torch.long)
    row, pos, target, slot = [], [], [], []
    kl: list[tuple[int, int, int]] = []  # (original row, packed row, position)
    for i, (tokens, places, labels) in enumerate(zip(packed, positions, branches, strict=True)):
        off = width - len(tokens)
        ids[i, off:] = torch.tensor(tokens)
        mask[i, off:] = 1
        pos_ids[i, off:] = torch.tensor(places)
        branch[i, off:] = torch.tensor(labels)
        for r, predictors in reads[i]:
            for q, t in zip(predictors, rows.targets[r], strict=True):
                row.append(i)
                pos.append(off + q)
                target.append(t)
                slot.append(r)
        kl += [(r, i, off + q) for r, q in kl_reads[i]]
    kl.sort()  # KL readings in the order of the original rows, as pad_batch gives them
    kl_row, kl_pos = [i for _, i, _ in kl], [q for _, _, q in kl]
    as_t = lambda v: torch.tensor(v, dtype=torch.long, device=device)  # noqa: E731
    gather = Gather(
        as_t(row), as_t(pos), as_t(target), as_t(kl_row), as_t(kl_pos), len(rows), as_t(slot)
    )
    return ids.to(device), mask.to(device), gather, Packing(pos_ids.to(device), branch.to(device))


def batch_rows(
    rows: TokenRows, pad_id: int, device: torch.device | str, pack: bool
) -> tuple[Tensor, Tensor, Gather, Packing | None]:
    """:func:`pack_batch` when ``pack`` (the runner can pack and the caller asks), else
    :func:`interp.causal.readouts.pad_batch` with no packing."""
    if pack:
        return pack_batch(rows, pad_id, device)
    ids, mask, gather = pad_batch(rows, pad_id, device)
    return ids, mask, gather, None
