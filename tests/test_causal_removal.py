"""Shift removal, zero-ablation and the variance-matched null on a tiny random model."""

from __future__ import annotations

import copy

import pytest
import torch

from interp.causal.inputs import study_prompts
from interp.causal.moments import residual_moments
from interp.causal.removal import (
    matched_random_directions,
    removal_layer,
    removed_variance,
    shift_amounts,
    shift_edits,
    standardized_shifts,
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


@pytest.mark.parametrize("kind", ["resid_post", "resid_pre"])
def test_shift_removal_sets_the_warm_mean_projection_to_the_original_mean(models, convs, kind):
    """At the removal layer the edited warm model's mean projection equals the original's, and
    each token keeps its own variation along the direction; zero-ablation leaves zero. Both
    act, and are measured, at the direction's own site kind."""
    original, warm = models
    layers = [1, 2] if kind == "resid_pre" else [0, 1, 2]  # resid_pre 0: the embeddings, unmoved
    d = Direction(
        "persona",
        "mean_diff",
        kind,
        "last",
        tuple(layers),
        torch.randn(len(layers), original.d_model, generator=torch.Generator().manual_seed(0)),
    )
    m_orig = residual_moments(get_backend(original, "torch"), convs, layers, site_kind=kind)
    wb = get_backend(warm, "torch")
    before = residual_moments(wb, convs, layers, site_kind=kind)
    shifts = shift_amounts(d, layers, before, m_orig)
    assert any(abs(c) > 1e-3 for c in shifts.values())
    for layer in layers:
        edits = shift_edits(d, layer, shifts[layer])
        assert {site.kind for site in edits} == {kind}
        after = residual_moments(wb, convs, [layer], edits=edits, site_kind=kind)
        u = d.unit(layer)
        assert after[layer].projection_mean(u) == pytest.approx(
            m_orig[layer].projection_mean(u), abs=1e-4
        )
        assert removed_variance(d, [layer], after)[layer] == pytest.approx(
            removed_variance(d, [layer], before)[layer], rel=1e-4
        ), "a shift keeps each token's variation along the direction"
    zeroed = residual_moments(
        wb, convs, layers, edits=zero_ablation_edits(d, layers), site_kind=kind
    )
    for layer in layers:
        assert zeroed[layer].change_by_setting(d.unit(layer), 0.0) == pytest.approx(0.0, abs=1e-6)


def test_removal_layer_is_where_the_shift_is_largest_against_the_spread(models, convs):
    original, warm = models
    layers = [0, 1, 2]
    m_orig = residual_moments(get_backend(original, "torch"), convs, layers)
    m_warm = residual_moments(get_backend(warm, "torch"), convs, layers)
    # the fine-tune's own mean difference, per layer: its shift is the whole difference
    diff = torch.stack([(m_warm[k].mean - m_orig[k].mean).float() for k in layers])
    d = Direction("finetune", "mean_diff", "resid_post", "all", tuple(layers), diff)
    scores = standardized_shifts(d, layers, m_warm, m_orig)
    assert removal_layer(d, layers, m_warm, m_orig) == max(layers, key=scores.get)
    for k in layers:
        assert shift_amounts(d, [k], m_warm, m_orig)[k] == pytest.approx(
            -float(diff[k - layers[0]].norm()), rel=1e-4
        )


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


def test_moments_equal_a_direct_float64_computation_even_far_from_zero(models, convs):
    # batched by length, merged per batch (float32 products about each batch's mean): the mean
    # and covariance equal float64 statistics of every kept token, also after an edit that
    # moves every token far from zero (a large mean, where raw float32 products would cancel)
    from interp.chat import encode_chat

    original, _ = models
    backend = get_backend(original, "torch")
    layers = [0, 2]
    far = 1e4 * torch.nn.functional.normalize(torch.ones(original.d_model), dim=0)
    from interp.sites import Site

    edits = {Site(0, "resid_post"): lambda x, s: x + far.to(x.dtype)}
    for kwargs in ({}, {"edits": edits}):
        got = residual_moments(backend, convs, layers, batch_size=5, **kwargs)
        tokens = {layer: [] for layer in layers}
        for conv in convs:
            ids = torch.tensor([encode_chat(original.tokenizer, conv, True).input_ids])
            with (
                torch.no_grad(),
                backend.hooked(
                    read={
                        Site(layer, "resid_post"): lambda x: x[0, 1:].double() for layer in layers
                    },
                    edit=kwargs.get("edits"),
                ) as rec,
            ):
                backend.forward(ids, torch.ones_like(ids))
            for layer in layers:
                tokens[layer].append(rec[Site(layer, "resid_post")])
        for layer in layers:
            x = torch.cat(tokens[layer])
            assert got[layer].n == x.shape[0]
            torch.testing.assert_close(got[layer].mean, x.mean(0), rtol=1e-6, atol=1e-3)
            cov = torch.cov(x.T, correction=0)
            torch.testing.assert_close(
                got[layer].covariance, cov, rtol=1e-4, atol=1e-4 * float(cov.abs().max())
            )
    means_only = residual_moments(backend, convs, layers, second=False, edits=edits)
    torch.testing.assert_close(means_only[2].mean, got[2].mean, rtol=1e-6, atol=1e-3)
    assert means_only[2].second is None
    with pytest.raises(ValueError, match="without the second moment"):
        _ = means_only[2].covariance
