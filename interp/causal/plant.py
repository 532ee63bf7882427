"""A planted "warm" model: the original with a known vector added to its residual stream.

The verdict protocol (:mod:`interp.causal.protocol`) has to prove that it can find an effect
where one exists by construction. :func:`planted_model` makes such a model: a copy of the
original whose decoder layer ``layer`` adds ``vector`` to the residual stream at every position
(a bias on the layer's MLP output projection, so every forward, cached or not, generation
included, carries it, with no hook to install). :func:`plant_targets` gives the two directions the
protocol then removes: the planted one (the same unit vector at every layer, since the residual
stream carries it upwards) and a random direction of the same size orthogonal to it, which must
not be called restoring.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from interp.directions import Direction
from interp.errors import InterpError
from interp.hooks.native import decoder_layers
from interp.models import LoadedModel
from interp.steer import constant_direction

# architectures whose MLP output is normalised again before it joins the residual stream: a
# bias there would not add the vector itself
SANDWICH = ("gemma2", "gemma3", "gemma3_text")


class PlantError(InterpError, ValueError):
    """The model has no place to plant a residual vector (the message names what is missing)."""


def planted_model(
    loaded: LoadedModel, vector: Float[Tensor, " d"], layer: int, *, label: str
) -> LoadedModel:
    """A deep copy of ``loaded`` whose decoder layer ``layer`` adds ``vector`` (residual units)
    to every position's residual stream; ``label`` names it in provenance."""
    hf = loaded.hf_model
    model_type = str(getattr(hf.config, "model_type", ""))
    if model_type in SANDWICH:
        raise PlantError(
            f"{model_type} normalises its MLP output before the residual stream; a planted bias "
            "would not add the vector as given"
        )
    if not 0 <= layer < loaded.n_layers:
        raise PlantError(
            f"plant layer {layer} is not a layer of the model (0-{loaded.n_layers - 1})"
        )
    if vector.shape != (loaded.d_model,):
        raise PlantError(
            f"plant vector must have shape ({loaded.d_model},), found {tuple(vector.shape)}"
        )
    copied = copy.deepcopy(loaded.model)
    target = copied.get_base_model() if hasattr(copied, "get_base_model") else copied
    block = decoder_layers(target)[layer]
    down = getattr(getattr(block, "mlp", None), "down_proj", None)
    if not isinstance(down, torch.nn.Linear):
        raise PlantError(
            f"decoder layer {layer} of {type(target).__name__} has no mlp.down_proj Linear to "
            "carry the planted vector"
        )
    with torch.no_grad():
        bias = vector.detach().to(device=down.weight.device, dtype=down.weight.dtype)
        if down.bias is not None:
            bias = bias + down.bias
        down.bias = torch.nn.Parameter(bias.clone(), requires_grad=False)
    extra = {
        **loaded.extra,
        "planted": {"label": label, "layer": layer, "norm": float(vector.norm())},
    }
    return dataclasses.replace(loaded, model=copied, name=f"{loaded.name}+{label}", extra=extra)


def plant_targets(
    vector: Float[Tensor, " d"], layers: Sequence[int], *, name: str, seed: int = 0
) -> tuple[Direction, Direction]:
    """The planted direction (``vector`` at every layer of ``layers``) and a seeded random
    direction of the same norm, orthogonal to it (``planted-random``)."""
    v = vector.detach().double()
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(v.shape, generator=g, dtype=torch.float64)
    u = v / v.norm()
    r = r - (r @ u) * u
    r = r / r.norm() * v.norm()
    return (
        constant_direction(name, v.float(), layers, planted=True),
        constant_direction("planted-random", r.float(), layers, planted=False, seed=seed),
    )
