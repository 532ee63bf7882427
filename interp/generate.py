"""Batched, seeded chat generation through any backend (and under any active hooks).

Prompts are rendered by :mod:`interp.chat`, left-padded into batches of similar length, and decoded
back to text.
Sampling is seeded per call, so the same prompts, seed and batch size give the same replies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Int
from torch import Tensor

from interp.chat import Message, encode_chat
from interp.hooks.base import Backend
from interp.length_batches import length_batches


@dataclass(frozen=True)
class SamplingConfig:
    """How to decode. ``temperature=0`` means greedy."""

    max_new_tokens: int = 300
    temperature: float = 0.8
    top_p: float = 1.0
    seed: int = 0
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, found {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, found {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], found {self.top_p}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, found {self.batch_size}")

    def generate_kwargs(self) -> dict[str, object]:
        if self.temperature == 0:
            return {"max_new_tokens": self.max_new_tokens, "do_sample": False}
        return {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": True,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": 0,
        }


def left_pad(
    sequences: Sequence[Sequence[int]], pad_id: int, device: torch.device | str = "cpu"
) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]]:
    """Left-pad token lists into ``(input_ids, attention_mask)``, both ``(batch, max_len)``."""
    if not sequences:
        raise ValueError("no sequences to pad")
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, seq in enumerate(sequences):
        if len(seq) == 0:
            raise ValueError(f"sequence {i} is empty")
        ids[i, width - len(seq) :] = torch.tensor(list(seq), dtype=torch.long)
        mask[i, width - len(seq) :] = 1
    return ids.to(device), mask.to(device)


def generate_replies(
    backend: Backend,
    conversations: Sequence[Sequence[Message]],
    sampling: SamplingConfig = SamplingConfig(),
) -> list[str]:
    """One assistant reply per conversation (each ending with a user turn), in order.
    Conversations of similar length share a batch (:mod:`interp.length_batches`), so a batch
    pads little; batch ``b`` of them is sampled with seed ``seed + b * batch_size``."""
    loaded = backend.loaded
    tok = loaded.tokenizer
    encoded = [
        encode_chat(tok, conv, add_generation_prompt=True).input_ids for conv in conversations
    ]
    replies = [""] * len(encoded)
    batches = length_batches([len(e) for e in encoded], sampling.batch_size)
    for b, members in enumerate(batches):
        ids, mask = left_pad([encoded[i] for i in members], tok.pad_token_id, loaded.device)
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(sampling.seed + b * sampling.batch_size)
        try:
            with torch.no_grad():
                new = backend.generate(ids, mask, **sampling.generate_kwargs())
        finally:
            torch.random.set_rng_state(generator_state)
        for i, text in zip(members, tok.batch_decode(new, skip_special_tokens=True), strict=True):
            replies[i] = text.strip()
    return replies
