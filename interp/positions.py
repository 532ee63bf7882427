"""Which token positions of a prompt the cache keeps, per row.

A position spec is one of:

- ``last``: the last prompt token (with the generation prompt, the token right before the
  assistant's reply would start);
- ``last:K``: each of the last K tokens (kept as ``(K, d_model)`` per row, oldest first);
- ``mean_user``: mean over the tokens of the last user message (or of a character span of it,
  e.g. the question, when the row gives one);
- ``mean_assistant``: mean over the tokens of the last assistant message (a response being read);
- ``last_assistant``: the last token of the last assistant message's content (e.g. the answer
  letter of a CAA-style ``(A`` / ``(B`` reply, before the template's end-of-turn tokens).

Specs resolve, for a rendered :class:`~interp.chat.ChatEncoding`, to a weight matrix over token
positions, so one ``einsum`` in the hook reduces ``(batch, pos, d_model)`` to what is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from interp.chat import ChatEncoding, Role, char_span_to_token_span

_LAST_K = re.compile(r"^last:(\d+)$")


class PositionError(ValueError):
    """A position spec is invalid or does not apply to a row."""


@dataclass(frozen=True)
class PositionSpec:
    """A parsed position spec (see module docstring)."""

    kind: str
    k: int = 1

    @classmethod
    def parse(cls, text: str) -> PositionSpec:
        text = text.strip()
        if text in ("last", "mean_user", "mean_assistant", "last_assistant"):
            return cls(text)
        if m := _LAST_K.match(text):
            k = int(m.group(1))
            if k < 1:
                raise PositionError(f"last:K needs K >= 1, found {k}")
            return cls("last_k", k)
        raise PositionError(
            f"unknown position {text!r}; expected last, last:K, mean_user, mean_assistant or "
            "last_assistant"
        )

    @property
    def label(self) -> str:
        return f"last:{self.k}" if self.kind == "last_k" else self.kind

    @property
    def n_slots(self) -> int:
        """How many vectors per row this spec keeps."""
        return self.k if self.kind == "last_k" else 1


def token_weights(
    spec: PositionSpec, enc: ChatEncoding, user_span: tuple[int, int] | None = None
) -> Float[Tensor, "slots pos"]:
    """Weights over the row's own (unpadded) token positions for each kept slot.

    ``user_span`` is a character span inside the last user message's content (for example the
    question without the inserted statement); by default the whole message.
    """
    n = len(enc.input_ids)
    w = torch.zeros(spec.n_slots, n)
    if spec.kind == "last":
        w[0, n - 1] = 1.0
    elif spec.kind == "last_k":
        if spec.k > n:
            raise PositionError(f"last:{spec.k} asks for more tokens than the row has ({n})")
        for slot in range(spec.k):
            w[slot, n - spec.k + slot] = 1.0
    elif spec.kind == "last_assistant":
        span = enc.span_of("assistant")
        if span.tok_end <= span.tok_start:
            raise PositionError("the assistant span has no tokens")
        w[0, span.tok_end - 1] = 1.0
    else:
        role: Role = "user" if spec.kind == "mean_user" else "assistant"
        span = enc.span_of(role)
        start, end = span.tok_start, span.tok_end
        if role == "user" and user_span is not None:
            a, b = user_span
            if not 0 <= a < b <= span.char_end - span.char_start:
                raise PositionError(f"user span {user_span} lies outside the user message")
            start, end = char_span_to_token_span(
                enc.offsets, span.char_start + a, span.char_start + b
            )
        if end <= start:
            raise PositionError(f"the {role} span has no tokens")
        w[0, start:end] = 1.0 / (end - start)
    return w
