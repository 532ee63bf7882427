"""Directions in SAE latents: decoder cosines, attribution of an activation difference, top
activating examples, and the overlap of two latent sets against random nulls.

Attribution of a difference between two sets of activations ``a`` (e.g. the warm model) and ``b``
(the original model on the same text) to latent ``i`` along a unit direction ``u``::

    attribution_i = (mean f_i(a) - mean f_i(b)) * (W_dec[i] . u)

the part of the difference of mean reconstructions, projected on ``u``, that latent ``i``
carries; the attributions sum to ``(mean recon(a) - mean recon(b)) . u``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor

from interp.sae.activations import TokenActivations
from interp.sae.intervene import encode_decode

DECOMPOSITION_COLUMNS = ("direction", "rank", "latent", "cosine", "attribution", "top_examples")
OVERLAP_COLUMNS = (
    "a",
    "b",
    "k",
    "overlap",
    "null",
    "null_mean",
    "null_low",
    "null_high",
    "p_value",
)


def unit_decoder(sae: Any) -> Float[Tensor, "d_sae d"]:
    """Decoder rows scaled to unit norm (zero rows stay zero)."""
    w = sae.W_dec.detach().float()
    return w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)


def decoder_cosines(sae: Any, direction: Float[Tensor, " d"]) -> Float[Tensor, " d_sae"]:
    """Cosine between ``direction`` and every decoder vector."""
    if direction.shape[-1] != sae.W_dec.shape[1]:
        raise ValueError(
            f"direction has d={direction.shape[-1]}, the SAE reads d={sae.W_dec.shape[1]}"
        )
    u = direction.float() / direction.float().norm().clamp_min(1e-12)
    return (unit_decoder(sae) @ u.to(sae.W_dec.device)).cpu()


@torch.no_grad()
def mean_features(
    sae: Any, acts: Float[Tensor, "n d"], batch_size: int = 4096
) -> Float[Tensor, " d_sae"]:
    """Mean latent activations over the rows of ``acts``."""
    total = torch.zeros(sae.cfg.d_sae, dtype=torch.float64)
    for start in range(0, acts.shape[0], batch_size):
        feats, _ = encode_decode(sae, acts[start : start + batch_size])
        total += feats.double().sum(0).cpu()
    return (total / acts.shape[0]).float()


def latent_attribution(
    sae: Any,
    acts_a: Float[Tensor, "n d"],
    acts_b: Float[Tensor, "m d"],
    direction: Float[Tensor, " d"],
) -> Float[Tensor, " d_sae"]:
    """Per-latent attribution of the ``a`` minus ``b`` difference along ``direction`` (module
    doc)."""
    u = direction.float() / direction.float().norm().clamp_min(1e-12)
    delta = mean_features(sae, acts_a) - mean_features(sae, acts_b)
    along = (sae.W_dec.detach().float() @ u.to(sae.W_dec.device)).cpu()
    return (delta * along).detach()


def top_latents(scores: Float[Tensor, " d_sae"], k: int) -> list[int]:
    """The ``k`` latents with the largest scores, best first."""
    return [int(i) for i in torch.argsort(scores, descending=True, stable=True)[:k]]


@torch.no_grad()
def top_examples(
    sae: Any,
    tokens: TokenActivations,
    latents: Sequence[int],
    tokenizer: Any,
    *,
    n: int = 3,
    window: int = 10,
    batch_size: int = 4096,
) -> dict[int, list[str]]:
    """For each latent, the contexts of its ``n`` strongest activations (one per row), as
    ``"...text[token] (activation)"``; empty when the latent never fires on ``tokens``."""
    idx = torch.tensor(list(latents), dtype=torch.long)
    cols = []
    for start in range(0, tokens.acts.shape[0], batch_size):
        feats, _ = encode_decode(sae, tokens.acts[start : start + batch_size])
        cols.append(feats[:, idx.to(feats.device)].float().cpu())
    acts = torch.cat(cols) if cols else torch.zeros(0, len(latents))
    out: dict[int, list[str]] = {}
    for j, latent in enumerate(latents):
        order = torch.argsort(acts[:, j], descending=True)
        seen: set[int] = set()
        found: list[str] = []
        for t in order.tolist():
            if acts[t, j] <= 0 or len(found) == n:
                break
            if int(tokens.row[t]) in seen:
                continue
            seen.add(int(tokens.row[t]))
            found.append(f"{tokens.context(tokenizer, t, window)} ({float(acts[t, j]):.2f})")
        out[int(latent)] = found
    return out


def decomposition_rows(
    name: str,
    cosines: Tensor,
    attribution: Tensor | None,
    latents: Sequence[int],
    examples: dict[int, list[str]],
) -> pd.DataFrame:
    """Tidy rows (:data:`DECOMPOSITION_COLUMNS`) for one direction's top latents."""
    rows = [
        {
            "direction": name,
            "rank": r + 1,
            "latent": int(i),
            "cosine": float(cosines[i]),
            "attribution": float(attribution[i]) if attribution is not None else np.nan,
            "top_examples": " | ".join(e.replace("|", "/") for e in examples.get(int(i), [])),
        }
        for r, i in enumerate(latents)
    ]
    return pd.DataFrame(rows, columns=list(DECOMPOSITION_COLUMNS))


def _interval(values: np.ndarray, observed: int) -> dict[str, float]:
    return {
        "null_mean": float(values.mean()),
        "null_low": float(np.quantile(values, 0.025)),
        "null_high": float(np.quantile(values, 0.975)),
        "p_value": float((1 + (values >= observed).sum()) / (1 + len(values))),
    }


def overlap_nulls(
    sae: Any, set_a: Sequence[int], set_b: Sequence[int], *, n: int = 2000, seed: int = 0
) -> list[dict[str, Any]]:
    """|A ∩ B| against two nulls: ``random-latents`` (A replaced by k latents drawn uniformly)
    and ``random-direction`` (A replaced by the top-k latents by cosine of a random Gaussian
    direction, which keeps the decoder's geometry). One-sided p-value: P(null >= observed)."""
    k, b = len(set_a), set(set_b)
    observed = len(set(set_a) & b)
    rng = np.random.default_rng(seed)
    d_sae = int(sae.cfg.d_sae)
    uniform = np.array(
        [len(b.intersection(rng.choice(d_sae, size=k, replace=False).tolist())) for _ in range(n)]
    )
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(n, sae.W_dec.shape[1], generator=g)
    decoder = unit_decoder(sae)
    cos = dirs.to(decoder.device) @ decoder.T  # (n, d_sae); the scale of dirs keeps the order
    tops = torch.topk(cos, k, dim=1).indices.cpu().numpy()
    geometric = np.array([len(b.intersection(row.tolist())) for row in tops])
    return [
        {"k": k, "overlap": observed, "null": "random-latents", **_interval(uniform, observed)},
        {"k": k, "overlap": observed, "null": "random-direction", **_interval(geometric, observed)},
    ]
