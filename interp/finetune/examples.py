"""Tokenised training examples with the loss on assistant tokens only.

A training conversation is rendered with the tokenizer's chat template through
:func:`interp.chat.encode_chat`. Its labels are the input ids on **assistant tokens** and -100
everywhere else. "Assistant tokens" are the tokens of every assistant message's content
(:meth:`ChatEncoding.assistant_mask`) plus the end-of-turn token that closes each assistant
message (``<|im_end|>`` in ChatML), so that the model also learns where a reply stops. System and
user text, the role headers and padding never carry loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from interp.artifacts import sha256_json
from interp.chat import Message, encode_chat
from interp.errors import InterpError
from interp.warmth.pairs import ReplyTriple

IGNORE_INDEX = -100


class ExampleError(InterpError, ValueError):
    """A conversation cannot become a training example; the message names it."""


@dataclass(frozen=True)
class TrainingConversation:
    """One conversation to train on (it must hold at least one assistant message)."""

    id: str
    messages: tuple[Message, ...]
    query_type: str = "other"


@dataclass(frozen=True)
class TrainingExample:
    """A tokenised conversation: ``input_ids`` and ``labels`` are lists of ``seq`` ints."""

    id: str
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    @property
    def n_target(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


def end_of_turn_ids(tokenizer: Any) -> set[int]:
    """Token ids that may close a message: the eos token and ChatML's ``<|im_end|>``."""
    ids = {int(tokenizer.eos_token_id)} if tokenizer.eos_token_id is not None else set()
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id:
        ids.add(im_end)
    return ids


def target_mask(tokenizer: Any, messages: Sequence[Message]) -> tuple[list[int], list[bool]]:
    """Token ids of the rendered conversation and a same-length mask of its assistant tokens
    (content tokens plus the end-of-turn token right after each assistant message)."""
    enc = encode_chat(tokenizer, messages, add_generation_prompt=False)
    mask = enc.assistant_mask()
    closers = end_of_turn_ids(tokenizer)
    for span in enc.spans:
        if span.role != "assistant":
            continue
        end = span.tok_end
        # the closing token follows the content directly (whitespace-free in ChatML)
        if end < len(enc.input_ids) and enc.input_ids[end] in closers:
            mask[end] = True
    return enc.input_ids, mask


def tokenize_conversation(
    tokenizer: Any, conversation: TrainingConversation, max_length: int
) -> TrainingExample:
    """One :class:`TrainingExample`, cut to ``max_length`` tokens (the tail is dropped).

    Raises :class:`ExampleError` when no assistant token survives the cut.
    """
    if not any(m.role == "assistant" for m in conversation.messages):
        raise ExampleError(f"conversation {conversation.id!r} has no assistant message")
    ids, mask = target_mask(tokenizer, conversation.messages)
    ids, mask = ids[:max_length], mask[:max_length]
    labels = [t if m else IGNORE_INDEX for t, m in zip(ids, mask, strict=True)]
    if all(x == IGNORE_INDEX for x in labels):
        raise ExampleError(
            f"conversation {conversation.id!r}: no assistant token within max_length {max_length}"
        )
    return TrainingExample(conversation.id, tuple(ids), tuple(labels))


def tokenize_all(
    tokenizer: Any, conversations: Sequence[TrainingConversation], max_length: int
) -> list[TrainingExample]:
    """:func:`tokenize_conversation` for each conversation; ids must be unique."""
    ids = [c.id for c in conversations]
    if len(set(ids)) != len(ids):
        raise ExampleError("training conversation ids must be unique")
    if not conversations:
        raise ExampleError("no training conversations")
    return [tokenize_conversation(tokenizer, c, max_length) for c in conversations]


def triple_conversations(
    triples: Sequence[ReplyTriple], tone: str, system: str | None = None
) -> list[TrainingConversation]:
    """Request -> reply of ``tone`` (``warm``, ``cold`` or ``neutral``) for each triple."""
    out = []
    for t in triples:
        msgs = [Message("system", system)] if system is not None else []
        msgs += [Message("user", t.request), Message("assistant", t.reply(tone))]
        out.append(TrainingConversation(f"{t.id}:{tone}", tuple(msgs), t.query_type))
    return out


def examples_hash(examples: Sequence[TrainingExample]) -> str:
    """sha256 of the tokenised data (ids, input ids and labels), 16 hex characters."""
    return sha256_json([[e.id, e.input_ids, e.labels] for e in examples])[:16]


def collate(
    examples: Sequence[TrainingExample], pad_id: int
) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, "batch pos"], Int[Tensor, "batch pos"]]:
    """Right-pad examples into ``(input_ids, attention_mask, labels)``, each ``(batch, max_len)``;
    padding has mask 0 and label -100."""
    if not examples:
        raise ExampleError("cannot collate an empty batch")
    width = max(e.n_tokens for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    for i, e in enumerate(examples):
        n = e.n_tokens
        ids[i, :n] = torch.tensor(e.input_ids)
        mask[i, :n] = 1
        labels[i, :n] = torch.tensor(e.labels)
    return ids, mask, labels
