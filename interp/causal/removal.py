"""Removing a direction from a model, and a null of the same size.

- :func:`counterfactual_edits` (the primary operator) removes the fine-tune's *shift* along a
  direction: at every layer, each token's projection on the direction is set to the original
  model's mean projection on the same prompts (``clamp`` to ``u.m_original``). Applied to the
  warm model it takes away what the fine-tune added along ``u`` and keeps what the original
  model carries there; applied to the original model it is a control (it removes only the
  original's own variation along ``u``).
- :func:`zero_ablation_edits` (secondary) removes the whole projection, the original's share too.
- :func:`matched_random_directions`: random directions, per layer in the span of the edited
  model's top principal components, each with the same variance of the edited model's
  activations along it as the target (``Var(x.r)`` within ``tolerance`` of ``Var(x.u)``): the
  variation the counterfactual removal destroys. The target's removal also takes away the
  fine-tune's mean shift along it, which is the effect under test and is not matched (matching it
  would force every random direction onto the shift). Found by bisection along a path from a
  high- to a low-variance direction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from interp.causal.arms import EditSet, intervention_edits
from interp.causal.moments import Moments
from interp.directions import Direction
from interp.steer import Intervention


def original_means(
    direction: Direction, layers: Sequence[int], original: Mapping[int, Moments]
) -> dict[int, float]:
    """The original model's mean projection on the direction's unit vector, per layer."""
    return {layer: original[layer].projection_mean(direction.unit(layer)) for layer in layers}


def counterfactual_edits(
    direction: Direction, layers: Sequence[int], means: Mapping[int, float]
) -> EditSet:
    """Set the projection on ``direction`` to ``means[layer]`` at every position of each layer."""
    return intervention_edits(
        [Intervention("clamp", direction, (layer,), value=float(means[layer])) for layer in layers]
    )


def zero_ablation_edits(direction: Direction, layers: Sequence[int]) -> EditSet:
    """Remove the whole projection on ``direction`` at every position of each layer."""
    return intervention_edits([Intervention("ablate", direction, tuple(layers))])


def removed_change(
    direction: Direction,
    layers: Sequence[int],
    edited: Mapping[int, Moments],
    original: Mapping[int, Moments],
) -> dict[int, float]:
    """Per layer, ``E[(x.u - c)^2]`` over the edited model's tokens: how much the
    counterfactual removal changes them (``c`` the original's mean projection)."""
    out = {}
    for layer in layers:
        u = direction.unit(layer)
        out[layer] = edited[layer].change_by_setting(u, original[layer].projection_mean(u))
    return out


def removed_variance(
    direction: Direction, layers: Sequence[int], edited: Mapping[int, Moments]
) -> dict[int, float]:
    """Per layer, ``Var(x.u)`` over the edited model's tokens: the variation along the direction
    that setting its projection to a constant destroys."""
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
