"""Forced-choice scoring: log-probabilities of candidate answers as the assistant's reply.

For each prompt (a conversation ending with a user turn) and its candidates (e.g. the correct and
the incorrect answer), the score of a candidate is the sum of the log-probabilities of its tokens
as the start of the assistant's reply, and its length-normalised mean. The prompt is computed once
per prompt, not once per candidate: on backends that expose the key/value cache (the torch
backend) the prompt's cache is shared by all candidates; elsewhere prompt+candidate rows are
batched. Both run under whatever hooks are active (steering, ablation), so interventions reach
the prompt and the candidate tokens alike. :func:`score_choices_naive` is the one-sequence-at-a-
time reference that tests and benchmarks compare against.

With the cache, two more savings (``share_prefix``): the token prefix that every prompt of the
call shares (the chat template's opening and system prompt) is computed once per batch, as one
row whose cache every row of the batch continues; and prompts are batched in order of length,
so a batch pads to similar lengths. Edits at "all" positions see the same activations either way
(every operator acts on each position alone), so the scores equal the unshared path's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from interp.chat import Message, encode_chat
from interp.generate import left_pad
from interp.hooks.base import Backend
from interp.hooks.positions import position_ids_from_mask


@dataclass(frozen=True)
class ChoicePrompt:
    """One forced-choice question: the conversation and the candidate replies (index 0 first)."""

    conversation: tuple[Message, ...]
    candidates: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.candidates) < 2:
            raise ValueError(f"need at least two candidates, found {len(self.candidates)}")
        if any(not c.strip() for c in self.candidates):
            raise ValueError(f"empty candidate in {self.candidates!r}")


@dataclass(frozen=True)
class ChoiceScores:
    """Scores of ``n`` prompts x ``k`` candidates.

    ``logprob_sum``: (n, k) summed token log-probabilities; ``n_tokens``: (n, k) token counts.
    """

    logprob_sum: Float[np.ndarray, "n k"]
    n_tokens: np.ndarray

    @property
    def logprob_mean(self) -> Float[np.ndarray, "n k"]:
        """Length-normalised scores (mean log-probability per token)."""
        return self.logprob_sum / self.n_tokens

    def margin(self, normalised: bool = True) -> Float[np.ndarray, " n"]:
        """Candidate 0 minus the best other candidate (positive: candidate 0 preferred)."""
        s = self.logprob_mean if normalised else self.logprob_sum
        return s[:, 0] - np.max(s[:, 1:], axis=1)

    def choice_probs(self, normalised: bool = True) -> Float[np.ndarray, "n k"]:
        """Softmax over the candidates' scores: the model's relative preference."""
        s = self.logprob_mean if normalised else self.logprob_sum
        z = np.exp(s - s.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)


def candidate_tokens(
    tokenizer: object, prompt_ids: list[int], prompt_text: str, candidate: str
) -> list[int]:
    """Token ids of ``candidate`` as it continues the rendered prompt.

    Tokenizes prompt+candidate together and keeps the suffix when the prompt's tokens are an
    exact prefix (no merge across the boundary); otherwise tokenizes the candidate alone.
    """
    full = tokenizer(prompt_text + candidate, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
    if full[: len(prompt_ids)] == prompt_ids and len(full) > len(prompt_ids):
        return list(full[len(prompt_ids) :])
    return list(tokenizer(candidate, add_special_tokens=False)["input_ids"])  # type: ignore[operator]


def _encode(
    backend: Backend, prompts: Sequence[ChoicePrompt]
) -> tuple[list[list[int]], list[list[list[int]]]]:
    tok = backend.loaded.tokenizer
    prompt_ids, cand_ids = [], []
    for p in prompts:
        enc = encode_chat(tok, p.conversation, add_generation_prompt=True)
        prompt_ids.append(enc.input_ids)
        cand_ids.append([candidate_tokens(tok, enc.input_ids, enc.text, c) for c in p.candidates])
    return prompt_ids, cand_ids


def _sum_logprobs(
    logits: Float[Tensor, "rows pos vocab"], targets: Tensor, mask: Tensor
) -> Float[Tensor, " rows"]:
    logp = torch.log_softmax(logits.float(), dim=-1)
    picked = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(dim=-1)


def score_choices(
    backend: Backend,
    prompts: Sequence[ChoicePrompt],
    batch_size: int = 16,
    share_prompt: bool | None = None,
    share_prefix: bool = True,
) -> ChoiceScores:
    """Score every candidate of every prompt, batched, computing each prompt once.

    ``share_prompt`` (default: when the backend supports it) reuses the prompt's key/value cache
    for the candidates; otherwise prompt+candidate rows are batched through ``backend.forward``.
    ``share_prefix`` (with the cache): compute the prefix common to all prompts once per batch
    and batch prompts by length (module doc). Scores come back in the prompts' order.
    """
    if not prompts:
        raise ValueError("no prompts to score")
    k = len(prompts[0].candidates)
    if any(len(p.candidates) != k for p in prompts):
        raise ValueError("every prompt in one call must have the same number of candidates")
    use_cache = backend.supports_cache if share_prompt is None else share_prompt
    if use_cache and not backend.supports_cache:
        raise ValueError(f"the {backend.name} backend cannot share a prompt cache")
    prompt_ids, cand_ids = _encode(backend, prompts)
    sums = np.zeros((len(prompts), k))
    counts = np.array([[len(c) for c in cands] for cands in cand_ids], dtype=float)
    prefixed = use_cache and share_prefix
    shared = common_prefix_length(prompt_ids, min_rest=2) if prefixed else 0
    order = (
        sorted(range(len(prompts)), key=lambda i: len(prompt_ids[i]))
        if prefixed
        else list(range(len(prompts)))
    )
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            rows = order[start : start + batch_size]
            p_ids = [prompt_ids[i] for i in rows]
            c_ids = [cand_ids[i] for i in rows]
            if not use_cache:
                got = _score_batch_full(backend, p_ids, c_ids)
            else:
                got = _score_batch_cached(backend, p_ids, c_ids, shared)
            sums[rows] = got.cpu().numpy()
    return ChoiceScores(logprob_sum=sums, n_tokens=counts)


def common_prefix_length(seqs: Sequence[Sequence[int]], min_rest: int = 1) -> int:
    """Length of the token prefix every sequence shares, leaving at least ``min_rest`` tokens of
    the shortest one outside it (0 when they share nothing)."""
    if not seqs:
        return 0
    limit = min(len(s) for s in seqs) - min_rest
    n = 0
    first = seqs[0]
    while n < limit and all(s[n] == first[n] for s in seqs):
        n += 1
    return max(n, 0)


def shared_prefix_length(seqs: Sequence[Sequence[int]], first_reads: Sequence[int]) -> int:
    """How many leading tokens every sequence shares before the first position any of them is
    read at (``first_reads[i]``: sequence ``i``'s first read position): a prefix that can run
    once for all of them (0 when there is none)."""
    if not seqs:
        return 0
    return min(common_prefix_length(seqs, min_rest=0), *first_reads)


def _right_pad(seqs: Sequence[Sequence[int]], pad: int) -> tuple[Tensor, Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(list(s))
        mask[i, : len(s)] = 1
    return ids, mask


def _score_batch_cached(
    backend: Backend,
    prompt_ids: list[list[int]],
    cand_ids: list[list[list[int]]],
    shared: int = 0,
) -> Float[Tensor, "batch k"]:
    """One prompt pass (left-padded) with cache, then all candidates from the repeated cache.

    ``shared`` > 0: the first ``shared`` tokens (the same in every row) run once as one row,
    and the rows' remaining tokens continue its cache (left-padded after the shared part)."""
    pad = backend.loaded.tokenizer.pad_token_id
    device = backend.loaded.device
    k = len(cand_ids[0])
    cache = None
    if shared:
        head = torch.tensor([prompt_ids[0][:shared]], device=device)
        ones = torch.ones_like(head)
        _, cache = backend.forward_cached(
            head, ones, position_ids_from_mask(ones), None, logits_to_keep=1
        )
        cache.batch_repeat_interleave(len(prompt_ids))
    ids, rest_mask = left_pad([p[shared:] for p in prompt_ids], pad, device)
    head_mask = torch.ones((len(prompt_ids), shared), dtype=rest_mask.dtype, device=device)
    mask = torch.cat([head_mask, rest_mask], dim=1)
    positions = shared + position_ids_from_mask(rest_mask)
    first_logits, cache = backend.forward_cached(ids, mask, positions, cache, logits_to_keep=1)
    cache.batch_repeat_interleave(k)
    flat = [c for cands in cand_ids for c in cands]
    c_ids, c_mask = _right_pad(flat, pad)
    c_ids, c_mask = c_ids.to(device), c_mask.to(device)
    prompt_len = mask.sum(dim=1).repeat_interleave(k)
    positions = prompt_len[:, None] + torch.arange(c_ids.shape[1], device=device)[None, :]
    full_mask = torch.cat([mask.repeat_interleave(k, dim=0), c_mask], dim=1)
    cand_logits, _ = backend.forward_cached(c_ids, full_mask, positions, cache)
    # candidate token j is predicted by the prompt's last position (j = 0) or by token j-1
    logits = torch.cat(
        [first_logits[:, -1:].repeat_interleave(k, dim=0), cand_logits[:, :-1]], dim=1
    )
    return _sum_logprobs(logits, c_ids, c_mask).view(len(prompt_ids), k)


def _score_batch_full(
    backend: Backend, prompt_ids: list[list[int]], cand_ids: list[list[list[int]]]
) -> Float[Tensor, "batch k"]:
    """Prompt+candidate rows, left-padded, through ``backend.forward`` (any backend)."""
    pad = backend.loaded.tokenizer.pad_token_id
    k = len(cand_ids[0])
    rows = [p + c for p, cands in zip(prompt_ids, cand_ids, strict=True) for c in cands]
    ids, mask = left_pad(rows, pad, backend.loaded.device)
    logits = backend.forward(ids, mask)
    width = max(len(c) for cands in cand_ids for c in cands)
    targets = torch.full((len(rows), width), pad, dtype=torch.long, device=ids.device)
    t_mask = torch.zeros_like(targets)
    picked_logits = torch.zeros(
        (len(rows), width, logits.shape[-1]), device=ids.device, dtype=logits.dtype
    )
    total = ids.shape[1]
    for r, c in enumerate(c for cands in cand_ids for c in cands):
        n = len(c)
        targets[r, :n] = torch.tensor(c, device=ids.device)
        t_mask[r, :n] = 1
        picked_logits[r, :n] = logits[r, total - n - 1 : total - 1]
    return _sum_logprobs(picked_logits, targets, t_mask).view(len(prompt_ids), k)


def score_choices_naive(backend: Backend, prompts: Sequence[ChoicePrompt]) -> ChoiceScores:
    """Reference implementation: one unpadded forward per (prompt, candidate) pair."""
    prompt_ids, cand_ids = _encode(backend, prompts)
    k = len(prompts[0].candidates)
    sums = np.zeros((len(prompts), k))
    counts = np.zeros((len(prompts), k))
    device = backend.loaded.device
    with torch.no_grad():
        for i, (p, cands) in enumerate(zip(prompt_ids, cand_ids, strict=True)):
            for j, c in enumerate(cands):
                ids = torch.tensor([p + c], device=device)
                logits = backend.forward(ids, torch.ones_like(ids))
                logp = torch.log_softmax(logits[0].float(), dim=-1)
                sums[i, j] = sum(float(logp[len(p) - 1 + t, tok]) for t, tok in enumerate(c))
                counts[i, j] = len(c)
    return ChoiceScores(logprob_sum=sums, n_tokens=counts)
