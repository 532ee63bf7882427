"""First and second moments of the residual stream, per layer, over the tokens of some prompts.

The shift removal needs the original and warm models' mean projections on a direction, and the
matched null needs, for any direction ``u``, how much variance an edit along ``u`` removes from
the edited model's activations. Both follow from the mean ``m`` and the second moment
``S = E[x x^T]`` of the tokens (one pass, through read reducers; each batch's products about its
own mean in float32, merged across batches in float64), so no per-token activations are kept:

- mean projection: ``E[x.u] = u.m``;
- change made by setting the projection to ``c``: ``E[(x.u - c)^2] = u^T S u - 2 c u.m + c^2``.

Tokens: every real token of each prompt (as the model reads it before answering) except its
first, whose norm is an attention-sink outlier (the rule of :func:`interp.steer.residual_norms`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import torch
from jaxtyping import Float
from torch import Tensor

from interp.chat import Message, encode_chat
from interp.generate import left_pad
from interp.hooks.base import Backend, Edit
from interp.length_batches import length_batches
from interp.sites import SITE_KINDS, Site, SiteKind


@dataclass(frozen=True)
class Moments:
    """Token count, mean ``(d,)`` and second moment ``(d, d)`` at one layer (float64); the
    second moment is None where it was not taken (a model whose mean projections are all that
    is read: the original model's, in the verdict protocol)."""

    n: int
    mean: Float[Tensor, " d"]
    second: Float[Tensor, "d d"] | None

    def _second(self) -> Float[Tensor, "d d"]:
        if self.second is None:
            raise ValueError("these moments were taken without the second moment (means only)")
        return self.second

    @property
    def covariance(self) -> Float[Tensor, "d d"]:
        """``S - m m^T``."""
        return self._second() - torch.outer(self.mean, self.mean)

    def projection_mean(self, u: Float[Tensor, " d"]) -> float:
        """Mean of ``x.u`` over the tokens."""
        return float(self.mean @ u.double())

    def change_by_setting(self, u: Float[Tensor, " d"], value: float) -> float:
        """``E[(x.u - value)^2]`` for a unit ``u``: the squared change made by setting every
        token's projection on ``u`` to ``value``."""
        u = u.double()
        return float(u @ self._second() @ u - 2.0 * value * (u @ self.mean) + value**2)


def residual_moments(
    backend: Backend,
    conversations: Sequence[Sequence[Message]],
    layers: Sequence[int],
    *,
    batch_size: int = 8,
    edits: Mapping[Site, Edit] | None = None,
    site_kind: str = "resid_post",
    second: bool = True,
) -> dict[int, Moments]:
    """:class:`Moments` of ``site_kind`` (``resid_post`` unless told) per layer over the
    conversations' tokens (rendered with the generation prompt, as when the model answers), each
    sequence's first token left out; under ``edits`` when given (reads see the activation after
    the edit at their site). ``second=False`` takes the means only (the ``(d, d)`` products
    per layer cost about as much as the forward itself). Conversations of similar length are
    batched together (:mod:`interp.length_batches`); the sums do not depend on the order."""
    if site_kind not in SITE_KINDS:
        raise ValueError(f"site_kind must be one of {', '.join(SITE_KINDS)}, found {site_kind!r}")
    kind = cast(SiteKind, site_kind)
    tok = backend.loaded.tokenizer
    encoded = [
        encode_chat(tok, list(c), add_generation_prompt=True).input_ids for c in conversations
    ]
    d = backend.loaded.d_model
    means = {layer: torch.zeros(d, dtype=torch.float64) for layer in layers}
    # per layer the sum of outer products of the tokens' deviations from the running mean
    scatter = {layer: torch.zeros(d, d, dtype=torch.float64) for layer in layers}
    count = 0
    with torch.no_grad():
        for members in length_batches([len(e) for e in encoded], batch_size):
            ids, mask = left_pad(
                [encoded[i] for i in members], tok.pad_token_id, backend.loaded.device
            )
            keep = mask.bool().clone()
            first = keep.int().argmax(dim=1)
            keep[torch.arange(keep.shape[0]), first] = False

            def reducer(x: Tensor, keep: Tensor = keep) -> Tensor:
                return x[keep.to(x.device)].float().cpu()

            sites = {Site(layer, kind): reducer for layer in layers}
            with backend.hooked(read=sites, edit=edits) as rec:
                backend.forward_for_reads(ids, mask)
            n_b = int(keep.sum())
            if n_b == 0:
                continue
            total = count + n_b
            for site in sites:
                x = rec[site]
                m_b = x.double().mean(0)
                delta = m_b - means[site.layer]
                means[site.layer] += delta * (n_b / total)
                if second:
                    # the batch's products about its own mean in float32 (no cancellation
                    # against a large mean), merged in float64 (Chan et al.'s pairwise update)
                    xc = x - m_b.float()
                    scatter[site.layer] += (xc.T @ xc).double() + torch.outer(delta, delta) * (
                        count * n_b / total
                    )
            count = total
    if count == 0:
        raise ValueError("no tokens to take moments over")
    return {
        layer: Moments(
            count,
            means[layer],
            scatter[layer] / count + torch.outer(means[layer], means[layer]) if second else None,
        )
        for layer in layers
    }
