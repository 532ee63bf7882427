"""SocioT warmth (Cheng, Yu & Jurafsky 2025), the paper's warmth metric, with a configurable scorer.

A response is stripped and cut to its first 300 characters, then quoted after social framings:
warm ones (``My friend said, "``, lover, mentor, idol) and cold ones (``A stranger said, "``,
enemy, examiner, dictator). A scoring causal LM is run in train mode so that dropout is active,
``n_passes`` times; per pass the score is

    mean over warm framings of the mean log-likelihood per token of the quoted text
    minus the same mean over the cold framings,

and the reported score is the mean over passes with the standard error over passes.

Only the tokens of the quoted text are scored; the framing prefix is context. The prefix and the
text are tokenised separately and concatenated, so every framing scores the very same text tokens
(a tokeniser's natural merges across the opening quote are not used; no closing quote is added,
it would not change the scored tokens' probabilities).

The paper scores with GPT-2 (124M), whose dropout (0.1 on embeddings, attention and residuals) is
live in train mode. Llama-family models such as the embedded SmolLM2 have ``attention_dropout``
0.0 and no other dropout, so train mode alone gives identical passes. :func:`stochastic_mode`
therefore sets a ``dropout`` probability (default 0.1) on every ``attention_dropout`` attribute
and every ``nn.Dropout`` module while scoring, and restores modes and probabilities afterwards,
also on exceptions. ``dropout=None`` keeps the model's own configuration (GPT-2 as in the paper).
Results always name the scorer (:attr:`SocioTResult.scorer`).

Cost: one forward pass per (response, framing, pass): 8 x n_passes sequences of ~55-80 tokens
per response. With the 135M embedded scorer in float32 on 2 CPU cores that is about 1.1 s per
response per pass (50 held-out replies: 54 s for 1 pass, 112 s for 2), hence
:data:`DEFAULT_PASSES` = 1 with :data:`DEFAULT_DROPOUT` = 0.0 (see below); the paper's 100
dropout passes of GPT-2 (``dropout=None, n_passes=100``) need a GPU or a lot of patience.

Measured on the 48 held-out reply triples with the embedded SmolLM2 scorer (2026-11): attention
dropout perturbs this model very strongly (its config has no dropout; presumably it was trained
without). With ``dropout=0.1`` two passes correlate 0.03 with each other per response and warm
beats neutral in 50% of pairs; ``dropout=0.02`` gives 69%; ``dropout=0.0`` (deterministic, one
pass suffices) gives 75%. Group means over many responses still order warm > neutral > cold at
0.1. The defaults are therefore ``dropout=0.0, n_passes=1``: deterministic, no SE, and the
best-separating setting measured for the embedded scorer. Every result names its scorer, its
dropout and its pass count, so a run with the paper's settings is never mistaken for this one.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.models import LoadedModel

log = logging.getLogger(__name__)

MAX_CHARS = 300
PAPER_PASSES = 100
DEFAULT_PASSES = 1
"""CPU default: 2 passes score 50 responses in about 2 minutes with the embedded scorer on 2 cores
(the paper uses :data:`PAPER_PASSES`; pass ``n_passes=100`` on a GPU). Two is also the fewest
passes that give an SE."""
DEFAULT_DROPOUT = 0.0


@dataclass(frozen=True)
class Framing:
    """One social framing: the text placed before the quoted response."""

    role: str
    polarity: Literal["warm", "cold"]
    prefix: str


FRAMINGS: tuple[Framing, ...] = (
    Framing("friend", "warm", 'My friend said, "'),
    Framing("lover", "warm", 'My lover said, "'),
    Framing("mentor", "warm", 'My mentor said, "'),
    Framing("idol", "warm", 'My idol said, "'),
    Framing("stranger", "cold", 'A stranger said, "'),
    Framing("enemy", "cold", 'My enemy said, "'),
    Framing("examiner", "cold", 'The examiner said, "'),
    Framing("dictator", "cold", 'The dictator said, "'),
)


@dataclass(frozen=True)
class SocioTResult:
    """SocioT scores of ``n`` responses over ``n_passes`` passes and ``f`` framings.

    ``scores``, ``se``: shape (n,) (``se`` is NaN with one pass); ``per_pass``: (n_passes, n)
    warm-minus-cold differences; ``framing_ll``: (n_passes, n, f) mean log-likelihood per token of
    each quoted response under each framing; ``n_tokens``: (n,) scored tokens per response.
    """

    scores: Float[np.ndarray, " n"]
    se: Float[np.ndarray, " n"]
    per_pass: Float[np.ndarray, "p n"]
    framing_ll: Float[np.ndarray, "p n f"]
    n_tokens: Int[np.ndarray, " n"]
    scorer: str
    scorer_hash: str
    n_passes: int
    dropout: float | None
    seed: int
    max_chars: int
    framings: tuple[Framing, ...] = field(default=FRAMINGS)

    def config(self) -> dict[str, Any]:
        """Settings for a meta.json (which scorer, how many passes, which dropout)."""
        return {
            "instrument": "sociot",
            "scorer": self.scorer,
            "scorer_weights_hash": self.scorer_hash,
            "n_passes": self.n_passes,
            "dropout": self.dropout,
            "seed": self.seed,
            "max_chars": self.max_chars,
            "framings": [f.__dict__ for f in self.framings],
        }


def truncate_response(text: str, max_chars: int = MAX_CHARS) -> str:
    """The response as scored: surrounding whitespace stripped, then its first ``max_chars``."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, found {max_chars}")
    return text.strip()[:max_chars]


def _dropout_sites(model: torch.nn.Module) -> tuple[list[Any], list[Any]]:
    """Modules with a numeric ``attention_dropout`` attribute, and ``nn.Dropout``-like modules."""
    attn: list[Any] = []
    drops: list[Any] = []
    for m in model.modules():
        value = getattr(m, "attention_dropout", None)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attn.append(m)
        if isinstance(m, torch.nn.modules.dropout._DropoutNd):
            drops.append(m)
    return attn, drops


@contextlib.contextmanager
def stochastic_mode(
    model: torch.nn.Module, dropout: float | None = DEFAULT_DROPOUT
) -> Iterator[int]:
    """Train mode with a set dropout probability for the block; everything restored after.

    Sets ``attention_dropout`` on attention modules (Llama, Mistral, Qwen2: 0.0 by default) and
    ``p`` on every ``nn.Dropout`` to ``dropout``; ``None`` leaves the model's own values. Every
    module's train/eval flag and every changed probability are restored in ``finally``. Yields the
    number of dropout sites found (0 means the passes will be identical whatever the mode).
    """
    if dropout is not None and not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), found {dropout}")
    modes = [(m, m.training) for m in model.modules()]
    attn, drops = _dropout_sites(model)
    saved_attn = [(m, m.attention_dropout) for m in attn]
    saved_p = [(m, m.p) for m in drops]
    try:
        model.train()
        if dropout is not None:
            for m in attn:
                m.attention_dropout = dropout
            for m in drops:
                m.p = dropout
        yield len(attn) + len(drops)
    finally:
        for m, value in saved_attn:
            m.attention_dropout = value
        for m, p in saved_p:
            m.p = p
        for m, training in modes:
            m.training = training


def _encode_rows(
    tokenizer: Any, texts: Sequence[str], framings: Sequence[Framing]
) -> tuple[list[list[int]], list[int], list[int]]:
    """Token ids of every (text, framing) row, text-major: ids, scored-span start, text length."""
    prefix_ids = [list(tokenizer(f.prefix, add_special_tokens=True)["input_ids"]) for f in framings]
    if any(not p for p in prefix_ids):
        raise ValueError("every framing prefix must tokenise to at least one token")
    rows, starts, n_text = [], [], []
    for i, text in enumerate(texts):
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        if not ids:
            raise ValueError(f"response {i} is empty after stripping; nothing to score")
        n_text.append(len(ids))
        for p in prefix_ids:
            rows.append(p + ids)
            starts.append(len(p))
    return rows, starts, n_text


def _mean_loglik(
    model: Any, rows: Sequence[list[int]], starts: Sequence[int], device: torch.device
) -> Float[Tensor, " b"]:
    """Mean log-probability per token of each row's tokens from ``starts[i]`` on (right-padded)."""
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    scored = torch.zeros(len(rows), width - 1, dtype=torch.bool)  # predicts token t+1
    for i, (r, s) in enumerate(zip(rows, starts, strict=True)):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
        scored[i, s - 1 : len(r) - 1] = True
    ids, mask, scored = ids.to(device), mask.to(device), scored.to(device)
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()  # (b, w-1, vocab)
    target = ids[:, 1:].unsqueeze(-1)
    logp = logits.gather(-1, target).squeeze(-1) - torch.logsumexp(logits, dim=-1)  # (b, w-1)
    return (logp * scored).sum(1) / scored.sum(1)


def sociot_scores(
    scorer: LoadedModel,
    texts: Sequence[str],
    *,
    n_passes: int = DEFAULT_PASSES,
    dropout: float | None = DEFAULT_DROPOUT,
    seed: int = 0,
    batch_size: int = 16,
    max_chars: int = MAX_CHARS,
    framings: Sequence[Framing] = FRAMINGS,
) -> SocioTResult:
    """SocioT warmth of each text under ``scorer`` (see the module docstring).

    ``n_passes`` stochastic passes with ``dropout`` (see :func:`stochastic_mode`); the torch RNG is
    seeded with ``seed`` inside a forked RNG state, so results are reproducible for a given
    ``batch_size`` and the caller's RNG is untouched. ``batch_size`` counts (text, framing) rows.
    """
    if n_passes < 1 or batch_size < 1:
        raise ValueError(f"n_passes and batch_size must be positive ({n_passes}, {batch_size})")
    polarity = np.array([f.polarity for f in framings])
    if not (polarity == "warm").any() or not (polarity == "cold").any():
        raise ValueError("need at least one warm and one cold framing")
    cut = [truncate_response(t, max_chars) for t in texts]
    rows, starts, n_text = _encode_rows(scorer.tokenizer, cut, framings)
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))  # similar lengths per batch
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    n, f = len(cut), len(framings)
    ll = np.zeros((n_passes, n * f))
    model, device = scorer.model, scorer.device
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), stochastic_mode(model, dropout) as n_sites:
        if n_sites == 0 and n_passes > 1:
            log.warning("scorer %s has no dropout sites: all passes are identical", scorer.name)
        torch.manual_seed(seed)
        with torch.inference_mode():
            for p in range(n_passes):
                for b in batches:
                    out = _mean_loglik(model, [rows[i] for i in b], [starts[i] for i in b], device)
                    ll[p, b] = out.double().cpu().numpy()
                log.info("SocioT pass %d/%d done (%d responses)", p + 1, n_passes, n)
    framing_ll = ll.reshape(n_passes, n, f)
    per_pass = framing_ll[..., polarity == "warm"].mean(-1) - framing_ll[
        ..., polarity == "cold"
    ].mean(-1)
    se = per_pass.std(0, ddof=1) / math.sqrt(n_passes) if n_passes > 1 else np.full(n, np.nan)
    return SocioTResult(
        scores=per_pass.mean(0),
        se=se,
        per_pass=per_pass,
        framing_ll=framing_ll,
        n_tokens=np.asarray(n_text),
        scorer=scorer.name,
        scorer_hash=scorer.weights_hash,
        n_passes=n_passes,
        dropout=dropout,
        seed=seed,
        max_chars=max_chars,
        framings=tuple(framings),
    )
