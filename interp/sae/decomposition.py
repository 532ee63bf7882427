"""Each direction in SAE latents (what ``interp sae decompose`` runs): the decoder cosines, the
attribution of the warm-minus-original difference, top examples, the top-latent sets with their
clamp values, and the overlap of warmth and sycophancy sets against nulls. The latent
interventions are ordinary verdict arms (:func:`interp.sae.intervene.latent_arms`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch

from interp.chat import Message
from interp.config import ConfigError
from interp.directions import Direction, DirectionError
from interp.hooks.base import Backend
from interp.sae.activations import TextRow, TokenActivations, read_rows
from interp.sae.decompose import (
    decoder_cosines,
    decomposition_rows,
    latent_attribution,
    overlap_nulls,
    top_examples,
    top_latents,
)
from interp.sae.intervene import encode_decode
from interp.sae.layer_choice import is_sycophancy
from interp.sites import Site
from interp.warmth.pairs import ReplyTriple


def decompose_directions(
    sae: Any,
    site: Site,
    directions: Sequence[Direction],
    original: Backend,
    warm: Backend,
    system: str | None,
    triples: Sequence[ReplyTriple],
    *,
    tokens: TokenActivations | None,
    top_k: int,
    n_examples: int,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dict[str, Any]], dict[str, Any]]:
    """Decomposition table, overlap table, latent sets (with clamp values) and meta fields.

    Both models read the neutral replies of ``triples`` (the warm one under ``system``); the
    top-activating examples come from ``tokens`` when given."""
    rows = [
        TextRow(
            f"{t.id}",
            "triple:neutral",
            conversation=(Message("user", t.request), Message("assistant", t.neutral)),
        )
        for t in triples
    ]
    acts_orig = read_rows(original, rows, site)
    acts_warm = read_rows(warm, rows, site, system=system)
    frames: list[pd.DataFrame] = []
    sets: dict[str, dict[str, Any]] = {}
    with torch.no_grad():
        warm_feats, _ = encode_decode(sae, acts_warm)
    for d in directions:
        try:
            v = d.at(site.layer)
        except DirectionError as exc:
            raise ConfigError(f"direction {d.name}: {exc}") from None
        cos = decoder_cosines(sae, v)
        attr = latent_attribution(sae, acts_warm, acts_orig, v)
        latents = top_latents(cos, top_k)
        examples = (
            top_examples(sae, tokens, latents, original.loaded.tokenizer, n=n_examples)
            if tokens is not None
            else {}
        )
        frames.append(decomposition_rows(d.name, cos, attr, latents, examples))
        clamp = [float(torch.quantile(warm_feats[:, i].float(), 0.99)) for i in latents]
        sets[d.name] = {"latents": latents, "clamp_values": clamp, "sycophancy": is_sycophancy(d)}
    overlap = []
    names = list(sets)
    for a in names:
        for b in names:
            if not sets[a]["sycophancy"] and sets[b]["sycophancy"]:
                for row in overlap_nulls(sae, sets[a]["latents"], sets[b]["latents"], seed=seed):
                    overlap.append({"a": a, "b": b, **row})
    overlap_df = pd.DataFrame(
        overlap,
        columns=["a", "b", "k", "overlap", "null", "null_mean", "null_low", "null_high", "p_value"],
    )
    meta = {
        "site": str(site),
        "directions": [d.name for d in directions],
        "n_tokens_attribution": int(acts_orig.shape[0]),
    }
    return pd.concat(frames, ignore_index=True), overlap_df, sets, meta
