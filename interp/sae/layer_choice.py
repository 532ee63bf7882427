"""Where the warmth directions are strongest: each direction's norm relative to the typical
residual norm (:func:`interp.steer.residual_norms`) per layer."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from interp.directions import Direction


def strongest_layer(
    directions: Sequence[Direction], norms: dict[int, float], *, skip_last: bool = True
) -> tuple[int, dict[int, float]]:
    """The layer where the directions' mean relative norm (‖v_L‖ / mean residual norm at L) is
    largest, and that mean per layer. The last layer is skipped by default (its ``resid_post``
    feeds only the final norm and unembedding)."""
    if not directions:
        raise ValueError("no directions to choose a layer from")
    last = max(norms)
    layers = sorted(set.intersection(*(set(d.layers) for d in directions)) & set(norms))
    if skip_last and len(layers) > 1:
        layers = [layer for layer in layers if layer != last]
    if not layers:
        raise ValueError("the directions share no layer with the model")
    rel = {
        layer: float(torch.stack([d.at(layer).norm() for d in directions]).mean()) / norms[layer]
        for layer in layers
    }
    return max(rel, key=lambda layer: rel[layer]), rel


def is_sycophancy(direction: Direction) -> bool:
    return direction.name.startswith("sycophancy")


def warmth_directions(directions: Sequence[Direction]) -> list[Direction]:
    """The directions that are not sycophancy directions."""
    return [d for d in directions if not is_sycophancy(d)]
