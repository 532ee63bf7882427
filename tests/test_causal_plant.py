"""The planted "warm" model adds exactly its vector at its layer; the targets are the planted
direction and a same-size random one orthogonal to it."""

from __future__ import annotations

import pytest
import torch

from interp.causal.plant import PlantError, plant_targets, planted_model
from interp.hooks import get_backend
from interp.sites import Site


@pytest.fixture(scope="module")
def tiny():
    from interp.tiny_models import tiny_model

    return tiny_model("llama", n_layers=3, seed=0)


def _resid(loaded, ids, layers):
    backend = get_backend(loaded, "torch")
    sites = [Site(layer, "resid_post") for layer in layers]
    with torch.no_grad(), backend.hooked(read=sites) as rec:
        backend.forward(ids, torch.ones_like(ids))
    return {s.layer: rec[s].clone() for s in sites}


def test_the_plant_adds_its_vector_at_its_layer_and_nothing_below(tiny):
    vector = torch.randn(tiny.d_model, generator=torch.Generator().manual_seed(0))
    warm = planted_model(tiny, vector, 1, label="plant:test@1")
    ids = torch.tensor([[1, 5, 9, 13, 17]])
    before, after = _resid(tiny, ids, [0, 1, 2]), _resid(warm, ids, [0, 1, 2])
    torch.testing.assert_close(after[0], before[0])
    torch.testing.assert_close(after[1] - before[1], vector.expand_as(before[1]), atol=1e-5, rtol=0)
    assert not torch.allclose(after[2], before[2])
    assert warm.extra["planted"]["layer"] == 1
    assert tiny.hf_model.model.layers[1].mlp.down_proj.bias is None, "the original is untouched"


def test_targets_are_the_plant_and_an_orthogonal_one_of_the_same_size():
    vector = torch.randn(16, generator=torch.Generator().manual_seed(1)) * 3
    planted, random = plant_targets(vector, [0, 1, 2], name="planted-x", seed=2)
    assert planted.layers == random.layers == (0, 1, 2)
    for layer in planted.layers:
        torch.testing.assert_close(planted.at(layer), vector)
        assert float(random.at(layer).norm()) == pytest.approx(float(vector.norm()), rel=1e-5)
        assert abs(float(random.unit(layer) @ planted.unit(layer))) < 1e-5


def test_bad_plants_are_refused(tiny):
    with pytest.raises(PlantError, match="not a layer"):
        planted_model(tiny, torch.zeros(tiny.d_model), 7, label="x")
    with pytest.raises(PlantError, match="shape"):
        planted_model(tiny, torch.zeros(3), 0, label="x")


def test_the_plant_scale_may_be_negative_but_not_zero():
    from interp.commands.verdict import VerdictConfig
    from interp.config import ConfigError

    config = VerdictConfig(directions=("d",), plant="sycophancy", plant_scale=-0.5)
    assert config.plant_scale == -0.5  # planted against the named direction
    for bad in (0.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="plant_scale must be finite and non-zero"):
            VerdictConfig(directions=("d",), plant="sycophancy", plant_scale=bad)
