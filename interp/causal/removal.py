"""Removing a direction from a model, and a null of the same size.

- :func:`shift_edits` (the primary operator) removes the fine-tune's *shift* along a direction at
  one layer: every token's activation moves by ``c u`` with ``c = u.m_original - u.m_warm`` (the
  means over the derivation prompts' tokens), so the warm model's mean projection on ``u`` there
  becomes the original model's, while each token keeps its own variation along ``u`` (the
  original carries such variation too). Later layers read the shifted stream. The layer is
  chosen on the derivation split by :func:`removal_layer`: where the fine-tune moved the
  direction furthest relative to its spread (:func:`standardized_shifts`). Applied to the
  original model, the same vector ``c u`` is a control: what the edit does where there is no
  warm shift to remove.
- :func:`zero_ablation_edits` (secondary) removes the whole projection at the layer, the
  original's share too.
- :func:`matched_random_directions`: random directions at the layer, in the span of the edited
  model's top principal components, each with the same variance of the edited model's
  activations along it as the target (``Var(x.r)`` within ``tolerance`` of ``Var(x.u)``), found
  by bisection along a path from a high- to a low-variance direction. The verdict's null arm
  applies the target's operator to each: the fine-tune's own shift along ``r``
  (``c_r = r.m_original - r.m_warm``) is removed. An earlier null pushed each ``r`` as far as the
  target (``|c|``, random sign); on the embedded model's planted check such pushes (half the
  residual norm) moved the answers as much as undoing the plant did, so it could not tell an
  exact restoration from a disruption of the same length.

Every operator acts at the direction's own site kind (``resid_post`` for every study direction;
the moments it is derived from must be taken there too:
:func:`interp.causal.moments.residual_moments`'s ``site_kind``).

Setting every token's projection to a constant (a clamp) at every layer, this module's first
operator, removed so much of the stream's own variation that the embedded model and every null
arm lost 2.5 to 6.5 nats of held-out loss: it could not tell a direction from any other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from interp.causal.arms import EditSet, intervention_edits
from interp.causal.moments import Moments
from interp.directions import Direction
from interp.steer import Intervention


def shift_amounts(
    direction: Direction,
    layers: Sequence[int],
    warm: Mapping[int, Moments],
    original: Mapping[int, Moments],
) -> dict[int, float]:
    """Per layer, ``c = u.m_original - u.m_warm`` (``u`` the direction's unit vector): adding
    ``c u`` gives the warm model's tokens the original's mean projection on ``u``."""
    out = {}
    for layer in layers:
        u = direction.unit(layer)
        out[layer] = original[layer].projection_mean(u) - warm[layer].projection_mean(u)
    return out


def standardized_shifts(
    direction: Direction,
    layers: Sequence[int],
    warm: Mapping[int, Moments],
    original: Mapping[int, Moments],
) -> dict[int, float]:
    """Per layer, ``|c| / sd(x.u)``: the fine-tune's shift along the direction in units of the
    warm model's spread along it (over the same tokens)."""
    shifts = shift_amounts(direction, layers, warm, original)
    variance = removed_variance(direction, layers, warm)
    return {layer: abs(shifts[layer]) / math.sqrt(max(variance[layer], 1e-12)) for layer in layers}


def removal_layer(
    direction: Direction,
    layers: Sequence[int],
    warm: Mapping[int, Moments],
    original: Mapping[int, Moments],
) -> int:
    """The layer (of ``layers``) with the largest :func:`standardized_shifts`: a rule on the
    derivation prompts' moments, fixed before any evaluation prompt is read."""
    scores = standardized_shifts(direction, layers, warm, original)
    return max(layers, key=lambda layer: scores[layer])


def shift_edits(direction: Direction, layer: int, amount: float) -> EditSet:
    """Add ``amount`` times the direction's unit vector at every position of ``layer``, at the
    direction's own site kind (``amount`` in raw units of that activation)."""
    # "add" scales alpha by a norm; a norm of 1 makes alpha the raw amount
    iv = Intervention(
        "add", direction, (layer,), alpha=float(amount), site_kind=direction.site_kind
    )
    return intervention_edits([iv], norms={layer: 1.0})


def zero_ablation_edits(direction: Direction, layers: Sequence[int]) -> EditSet:
    """Remove the whole projection on ``direction`` at every position of each layer, at the
    direction's own site kind."""
    iv = Intervention("ablate", direction, tuple(layers), site_kind=direction.site_kind)
    return intervention_edits([iv])


def removed_variance(
    direction: Direction, layers: Sequence[int], edited: Mapping[int, Moments]
) -> dict[int, float]:
    """Per layer, ``Var(x.u)`` over the edited model's tokens: how much the activations vary
    along the direction (what zero-ablation removes beside the mean)."""
    return {layer: _variance(direction.unit(layer).double(), edited[layer]) for layer in layers}


def _variance(u: Tensor, edited: Moments) -> float:
    u = u / u.norm()
    return float(u @ edited.covariance @ u)


def _match(target: float, hi: Tensor, lo: Tensor, edited: Moments, steps: int = 40) -> Tensor:
    """The unit vector on the great-circle path from ``hi`` to ``lo`` whose variance is
    closest to ``target`` (bisection: the variance moves from ``hi``'s towards ``lo``'s)."""
    lo = lo - (lo @ hi) * hi
    lo = lo / lo.norm()
    a, b = 0.0, torch.pi / 2
    f_a = _variance(hi, edited) - target
    best = hi
    for _ in range(steps):
        mid = (a + b) / 2
        v = (
            torch.cos(torch.tensor(mid, dtype=torch.float64)) * hi
            + torch.sin(torch.tensor(mid, dtype=torch.float64)) * lo
        )
        f = _variance(v, edited) - target
        best = v
        if abs(f) <= 1e-4 * abs(target):
            break
        if (f > 0) == (f_a > 0):
            a, f_a = mid, f
        else:
            b = mid
    return best / best.norm()


def matched_random_directions(
    like: Direction,
    layers: Sequence[int],
    edited: Mapping[int, Moments],
    n: int,
    *,
    seed: int = 0,
    n_components: int = 32,
    tolerance: float = 0.1,
) -> tuple[list[Direction], dict[str, list[float]]]:
    """``n`` random directions along which the edited model's activations vary as much as along
    ``like`` at every layer (within ``tolerance``), with ``like``'s per-layer norms; and per
    layer the variance ratios achieved (``"ratio@<layer>"``).

    Each starts as a Gaussian combination of the top ``n_components`` principal components of
    the edited model's activations and moves towards the top component (to remove more) or
    towards a random direction outside that span (to remove less) until it matches. Raises
    ValueError when a layer's target cannot be matched within ``tolerance``.
    """
    if n < 1:
        raise ValueError(f"need at least one random direction, found n={n}")
    g = torch.Generator().manual_seed(seed)
    vectors = {layer: [] for layer in layers}  # type: dict[int, list[Tensor]]
    ratios: dict[str, list[float]] = {}
    for layer in layers:
        target = _variance(like.unit(layer).double(), edited[layer])
        evals, evecs = torch.linalg.eigh(edited[layer].covariance)
        order = torch.argsort(evals, descending=True)
        top = evecs[:, order[:n_components]]
        rest = evecs[:, order[n_components:]]
        for _ in range(n):
            start = top @ torch.randn(top.shape[1], generator=g, dtype=torch.float64)
            start = start / start.norm()
            if _variance(start, edited[layer]) < target:
                hi = top[:, 0] * torch.sign(top[:, 0] @ start + 1e-12)
                v = _match(target, hi, start, edited[layer])
            else:
                low = (
                    rest @ torch.randn(rest.shape[1], generator=g, dtype=torch.float64)
                    if rest.shape[1]
                    else -start
                )
                v = _match(target, start, low, edited[layer])
            ratio = _variance(v, edited[layer]) / target
            if abs(ratio - 1.0) > tolerance:
                raise ValueError(
                    f"layer {layer}: no random direction in the top-{n_components} span "
                    f"matches the target's change within {tolerance:.0%} (ratio {ratio:.3f})"
                )
            vectors[layer].append(v.float() * like.at(layer).norm())
            ratios.setdefault(f"ratio@{layer}", []).append(ratio)
    out = []
    for i in range(n):
        stacked = torch.stack([vectors[layer][i] for layer in layers])
        out.append(
            Direction(
                f"matched-random{i}",
                "matched_random",
                like.site_kind,
                like.position,
                tuple(layers),
                stacked,
                meta={"seed": seed, "index": i, "like": like.name},
            )
        )
    return out, ratios
