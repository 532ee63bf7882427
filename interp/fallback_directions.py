"""Quick warmth and sycophancy directions for the causal tests when no ``interp directions`` run
is at hand (mean difference at ``resid_post``, every requested layer).

- ``persona``: warm minus neutral replies to the same requests (training triples only), the
  residual averaged over the reply's tokens (persona vectors);
- ``sycophancy``: prompts with a stated wrong belief minus the same prompts without it, at the
  last prompt token (where the answer is decided), paired by item and condition.

These are the simplest faithful definitions; ``interp directions`` derives the study's full set.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from interp.chat import Message, encode_chat
from interp.data.prompt_sets import Prompt
from interp.directions import Direction, derive
from interp.evaluate import conversation
from interp.generate import left_pad
from interp.hooks.base import Backend
from interp.sites import Site
from interp.warmth.pairs import ReplyTriple


def _pooled(backend: Backend, seqs: Sequence[list[int]], spans: Sequence[tuple[int, int]], layers: Sequence[int],
            batch_size: int = 8) -> dict[int, Tensor]:
    """Per layer ``(n, d)``: mean of ``resid_post`` over each sequence's ``[start, end)`` tokens."""
    tok = backend.loaded.tokenizer
    out: dict[int, list[Tensor]] = {layer: [] for layer in layers}
    sites = [Site(layer, "resid_post") for layer in layers]
    with torch.no_grad():
        for i in range(0, len(seqs), batch_size):
            chunk = seqs[i : i + batch_size]
            ids, mask = left_pad(chunk, tok.pad_token_id, backend.loaded.device)
            with backend.hooked(read=sites) as rec:
                backend.forward(ids, mask)
            width = ids.shape[1]
            for site in sites:
                x = rec[site]
                for r, (s, e) in enumerate(spans[i : i + batch_size]):
                    off = width - len(chunk[r])
                    out[site.layer].append(x[r, off + s : off + e].float().mean(0))
    return {layer: torch.stack(v) for layer, v in out.items()}


def persona_direction(backend: Backend, triples: Sequence[ReplyTriple], layers: Sequence[int]) -> Direction:
    """Warm-minus-neutral reply direction, averaged over reply tokens."""
    tok = backend.loaded.tokenizer
    acts = {}
    for tone in ("warm", "neutral"):
        encs = [encode_chat(tok, [Message("user", t.request), Message("assistant", t.reply(tone))], add_generation_prompt=False) for t in triples]
        spans = [(e.span_of("assistant").tok_start, e.span_of("assistant").tok_end) for e in encs]
        acts[tone] = _pooled(backend, [e.input_ids for e in encs], spans, layers)
    d = derive("persona", "mean_diff", acts["warm"], acts["neutral"], position="reply_mean",
               sources={"triples": f"{len(triples)} training triples"})
    d.meta["definition"] = "fallback: warm minus neutral replies, mean over reply tokens"
    return d


def sycophancy_direction(backend: Backend, prompts: Sequence[Prompt], layers: Sequence[int]) -> Direction:
    """Wrong-belief minus no-belief prompts (same item and condition), last prompt token."""
    tok = backend.loaded.tokenizer
    base = {(p.item_id, p.condition): p for p in prompts if p.template == "no_belief"}
    pairs = [(p, base[(p.item_id, p.condition)]) for p in prompts if p.template == "incorrect" and (p.item_id, p.condition) in base]
    if len(pairs) < 2:
        raise ValueError("the sycophancy direction needs at least two incorrect/no_belief prompt pairs")
    acts = {}
    for side, pick in (("belief", 0), ("none", 1)):
        seqs = [encode_chat(tok, conversation(pair[pick]), add_generation_prompt=True).input_ids for pair in pairs]
        acts[side] = _pooled(backend, seqs, [(len(s) - 1, len(s)) for s in seqs], layers)
    d = derive("sycophancy", "mean_diff", acts["belief"], acts["none"], position="last",
               sources={"prompts": f"{len(pairs)} incorrect/no_belief pairs"})
    d.meta["definition"] = "fallback: wrong belief minus no belief, last prompt token"
    return d
