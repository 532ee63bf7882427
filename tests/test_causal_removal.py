"""Counterfactual removal, zero-ablation and the variance-matched null on a tiny random model."""

from __future__ import annotations

import copy

import pytest
import torch

from interp.causal.inputs import study_prompts
from interp.causal.moments import residual_moments
from interp.causal.removal import (
    counterfactual_edits,
    matched_random_directions,
    original_means,
    removed_variance,
    zero_ablation_edits,
)
from interp.directions import Direction
from interp.evaluate import conversation
from interp.hooks import get_backend


@pytest.fixture(scope="module")
def models():
    from interp.tiny_models import tiny_model

    original = tiny_model("llama", n_layers=3, seed=0)
    warm = copy.deepcopy(original)
    with torch.no_grad():  # a "fine-tune": a shift along a known direction in every block's output
        for layer in warm.hf_model.model.layers:
            layer.mlp.down_proj.bias = None
            w = layer.mlp.down_proj.weight
            w.add_(torch.randn(w.shape, generator=torch.Generator().manual_seed(3)) * 0.05)
    return original, warm


@pytest.fixture(scope="module")
def convs():
    prompts, _ = study_prompts(per_task=2)
    return [conversation(p) for p in prompts[:24]]


def test_counterfactual_sets_the_warm_projection_to_the_original_mean(models, convs):
    original, warm = models
    layers = [0, 1, 2]
    d = Direction(
        "persona",
        "mean_diff",
        "resid_post",
        "last",
        tuple(layers),
        torch.randn(3, original.d_model, generator=torch.Generator().manual_seed(0)),
    )
    m_orig = residual_moments(get_backend(original, "torch"), convs, layers)
    means = original_means(d, layers, m_orig)
    wb = get_backend(warm, "torch")
    before = residual_moments(wb, convs, layers)
    assert any(
        abs(before[layer].projection_mean(d.unit(layer)) - means[layer]) > 1e-3 for layer in layers
    )
    after = residual_moments(wb, convs, layers, edits=counterfactual_edits(d, layers, means))
    for layer in layers:
        u = d.unit(layer)
        assert after[layer].projection_mean(u) == pytest.approx(means[layer], abs=1e-4)
        assert after[layer].change_by_setting(u, means[layer]) == pytest.approx(0.0, abs=1e-6)
    zeroed = residual_moments(wb, convs, layers, edits=zero_ablation_edits(d, layers))
    for layer in layers:
        assert zeroed[layer].change_by_setting(d.unit(layer), 0.0) == pytest.approx(0.0, abs=1e-6)


def test_matched_null_removes_the_same_variance(models, convs):
    _, warm = models
    layers = [1, 2]
    m_warm = residual_moments(get_backend(warm, "torch"), convs, layers)
    # a target that carries a lot of variance (the warm model's top principal component)
    top = torch.stack(
        [
            torch.linalg.eigh(m_warm[layer].covariance).eigenvectors[:, -2].float()
            for layer in layers
        ]
    )
    like = Direction("finetune", "mean_diff", "resid_post", "last", tuple(layers), top * 2.0)
    randoms, ratios = matched_random_directions(like, layers, m_warm, 20, seed=1, n_components=8)
    assert len(randoms) == 20
    target = removed_variance(like, layers, m_warm)
    for r in randoms:
        got = removed_variance(r, layers, m_warm)
        for layer in layers:
            assert got[layer] == pytest.approx(target[layer], rel=0.1)
            assert float(r.at(layer).norm()) == pytest.approx(
                float(like.at(layer).norm()), rel=1e-5
            )
    assert all(abs(x - 1) <= 0.1 for v in ratios.values() for x in v)
    cos = torch.nn.functional.cosine_similarity(randoms[0].at(1), randoms[1].at(1), dim=0)
    assert abs(float(cos)) < 0.99  # distinct draws
