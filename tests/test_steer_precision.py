"""Steering operators on low-precision activations and on another device than the direction's:
the projection maths runs in float32 on the activation's device, the result keeps its dtype."""

from __future__ import annotations

from unittest import mock

import pytest
import torch

from interp.directions import Direction
from interp.sites import Site
from interp.steer import (
    Intervention,
    ablate,
    ablation_everywhere,
    add,
    clamp,
    edits_for,
    projection,
)

SITE = Site(0, "resid_post")


def _x_and_direction(dtype: torch.dtype, d: int = 512, seed: int = 0):
    """bf16 activations with a large component (about 3x the rest) along a planted direction."""
    g = torch.Generator().manual_seed(seed)
    vec = torch.randn(1, d, generator=g, dtype=torch.float64)
    unit = vec[0] / vec[0].norm()
    noise = torch.randn(4, 7, d, generator=g, dtype=torch.float64)
    x = (noise + 3 * noise.norm(dim=-1, keepdim=True) * unit).to(torch.bfloat16)
    vec = vec.to(dtype)
    return x, Direction("planted", "mean_diff", "resid_post", "last", (0,), vec)


def _old_bf16_ablate(x: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
    u = unit.to(x.dtype)
    return x - (x @ u).unsqueeze(-1) * u


@pytest.mark.parametrize("stored", [torch.float32, torch.float64, torch.bfloat16])
def test_bf16_ablation_removes_the_component_to_fp32_precision(stored):
    x, direction = _x_and_direction(stored)
    unit = direction.vectors[0].double() / direction.vectors[0].double().norm()
    out = edits_for(Intervention("ablate", direction, (0,)))[SITE](x, SITE)
    assert out.dtype == torch.bfloat16 and out.shape == x.shape
    before = (x.double() @ unit).abs()
    left = (out.double() @ unit).abs() / before
    old = (_old_bf16_ablate(x, unit.float()).double() @ unit).abs() / before
    # bf16 maths left a per-mille share of the component; now only the final cast's rounding
    # (2^-9 relative per coordinate, spread over d coordinates) remains
    assert float(old.mean()) > 1e-3
    assert float(left.max()) < 1e-3
    assert float(left.mean()) < float(old.mean()) / 5
    # every other coordinate moved only by the bf16 rounding of the result
    other = (out.double() - x.double()) - ((out.double() - x.double()) @ unit).unsqueeze(-1) * unit
    assert float(other.norm(dim=-1).max() / x.double().norm(dim=-1).min()) < 1e-2


def test_fp32_ablation_is_exact_and_operators_keep_the_activation_dtype():
    x, direction = _x_and_direction(torch.float32)
    x32 = x.float()
    unit = direction.unit(0)
    assert float((ablate(x32, unit) @ unit).abs().max()) < 1e-4
    for fn in (
        lambda t: ablate(t, unit),
        lambda t: add(t, unit, 3.0),
        lambda t: clamp(t, unit, 2.0),
    ):
        assert fn(x).dtype == torch.bfloat16
        assert fn(x32).dtype == torch.float32
    assert projection(x, unit).dtype == torch.float32
    clamped = clamp(x32, unit, 2.0)
    assert torch.allclose(clamped @ unit, torch.full(x.shape[:2], 2.0), atol=1e-4)


def test_the_unit_moves_to_the_activation_device_once_in_float32():
    x, direction = _x_and_direction(torch.float64)
    calls: list[dict] = []
    real_to = torch.Tensor.to

    def spy(self, *args, **kwargs):
        calls.append({"from": self.dtype, **kwargs})
        return real_to(self, *args, **kwargs)

    for op in ("ablate", "clamp", "add", "ablate_add"):
        edit = edits_for(Intervention(op, direction, (0,), alpha=1.0, value=1.0), {0: 5.0})[SITE]
        calls.clear()
        with mock.patch.object(torch.Tensor, "to", spy):
            edit(x, SITE)
            edit(x, SITE)  # the moved unit is reused
        moves = [c for c in calls if c.get("device") is not None]
        want = {"device": x.device, "dtype": torch.float32}
        # one real conversion of the float64 unit; later calls find it already in place (no-ops)
        assert moves[0] == {"from": torch.float64, **want}, (op, calls)
        assert all(c == {"from": torch.float32, **want} for c in moves[1:]), (op, calls)


def test_ablation_everywhere_works_on_bf16():
    x, direction = _x_and_direction(torch.float32)
    unit = direction.unit(0)
    edits = ablation_everywhere(direction.vectors[0].double(), n_layers=2)
    out = edits[Site(1, "mlp_out")](x, Site(1, "mlp_out"))
    assert out.dtype == torch.bfloat16
    assert float(((out.float() @ unit).abs() / x.float().norm(dim=-1)).mean()) < 1e-3
