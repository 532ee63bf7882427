"""SAE training recovers planted sparse features; splicing with the error term is exact."""

from __future__ import annotations

import pytest
import torch

from interp.hooks import get_backend
from interp.sae.intervene import LatentEdit, random_latents, sae_edit, sae_splice
from interp.sae.quality import explained_variance, reconstruction_stats
from interp.sae.train import SaeTrainSpec, ShuffledBatches, to_inference, train_sae
from interp.sites import Site


def planted(
    n: int = 4000, d: int = 24, m: int = 16, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples, each a sum of ~3 of ``m`` random unit features with magnitudes in [1, 2]."""
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(m, d, generator=g)
    feats /= feats.norm(dim=1, keepdim=True)
    active = (torch.rand(n, m, generator=g) < 3 / m).float()
    return (active * (1 + torch.rand(n, m, generator=g))) @ feats, feats


@pytest.fixture(scope="module")
def planted_sae(tmp_path_factory):
    x, feats = planted()
    spec = SaeTrainSpec(
        d_sae=32, k=3, lr=3e-3, batch_size=256, n_samples=200_000, n_checkpoints=0, norm_batches=3
    )
    trained, info = train_sae(x, spec)
    sae = to_inference(trained, tmp_path_factory.mktemp("sae") / "sae")
    return sae, x, feats, info


def test_sae_recovers_planted_features(planted_sae):
    sae, x, feats, info = planted_sae
    w = sae.W_dec.detach() / sae.W_dec.detach().norm(dim=1, keepdim=True)
    best = (feats @ w.T).max(dim=1).values
    assert (best > 0.9).float().mean() >= 0.9, best
    stats = reconstruction_stats(sae, x)
    assert stats["explained_variance"] > 0.8
    assert stats["l0"] <= 3 + 1e-6
    assert info["steps"] == 782  # ceil(200_000 / 256)


def test_untrained_sae_does_not_recover(planted_sae):
    """The same check fails on a random dictionary (the recovery test can fail)."""
    _, _, feats, _ = planted_sae
    w = torch.randn(32, feats.shape[1], generator=torch.Generator().manual_seed(1))
    w /= w.norm(dim=1, keepdim=True)
    assert (feats @ w.T).max(dim=1).values.gt(0.9).float().mean() < 0.5


def test_explained_variance_values():
    x = torch.randn(100, 8, generator=torch.Generator().manual_seed(0))
    assert explained_variance(x, x) == pytest.approx(1.0)
    assert explained_variance(x, x.mean(0).expand_as(x)) == pytest.approx(0.0, abs=1e-9)


def test_shuffled_batches_resume_identically():
    acts = torch.arange(50, dtype=torch.float32)[:, None]
    full = ShuffledBatches(acts, 8, seed=3)
    seq = [next(full) for _ in range(14)]  # crosses epochs
    resumed = ShuffledBatches(acts, 8, seed=3, start=6 * 8)
    assert all(
        torch.equal(a, b) for a, b in zip(seq[6:], [next(resumed) for _ in range(8)], strict=True)
    )
    first_epoch = torch.cat(seq[:6]).flatten()
    assert len(set(first_epoch.tolist())) == 48  # no repeats inside an epoch


@pytest.fixture(scope="module")
def tiny_sae(tiny_llama, tmp_path_factory):
    torch.manual_seed(0)
    acts = torch.randn(2048, tiny_llama.d_model)
    trained, _ = train_sae(
        acts,
        SaeTrainSpec(
            d_sae=128, k=8, batch_size=256, n_samples=1024, n_checkpoints=0, norm_batches=2
        ),
    )
    return to_inference(trained, tmp_path_factory.mktemp("tiny") / "sae")


def _logits(backend, edit=None):
    ids = torch.tensor([[5, 9, 13, 2, 7, 21, 4], [3, 3, 8, 12, 6, 1, 30]])
    with torch.no_grad(), backend.hooked(edit=edit):
        return backend.forward(ids, torch.ones_like(ids))


def test_splice_with_error_leaves_logits_unchanged(tiny_llama, tiny_sae):
    backend = get_backend(tiny_llama, "torch")
    site = Site(1, "resid_post")
    clean = _logits(backend)
    torch.testing.assert_close(
        _logits(backend, {site: sae_splice(tiny_sae, with_error=True)}), clean, atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(
        _logits(backend, {site: sae_edit(tiny_sae, LatentEdit("none"))}),
        clean,
        atol=1e-5,
        rtol=1e-5,
    )
    # without the error term, or with latents ablated, the logits move
    assert (
        _logits(backend, {site: sae_splice(tiny_sae, with_error=False)}) - clean
    ).abs().max() > 1e-3
    firing = torch.topk(tiny_sae.W_dec.norm(dim=1), 128).indices.tolist()
    ablated = _logits(backend, {site: sae_edit(tiny_sae, LatentEdit("ablate", tuple(firing)))})
    assert (ablated - clean).abs().max() > 1e-3


def test_ablate_edit_removes_exactly_the_latents_contribution(tiny_sae):
    x = torch.randn(2, 5, tiny_sae.W_dec.shape[1], generator=torch.Generator().manual_seed(2))
    feats = tiny_sae.encode(x)
    live = sorted(set(torch.nonzero(feats[0, 0] > 0).flatten().tolist()))[:3]
    out = sae_edit(tiny_sae, LatentEdit("ablate", tuple(live)))(x.clone(), Site(0, "resid_post"))
    expected = x - feats[..., live] @ tiny_sae.W_dec[live]
    torch.testing.assert_close(out, expected.detach(), atol=1e-5, rtol=1e-5)
    clamped = sae_edit(tiny_sae, LatentEdit("clamp", (live[0],), (5.0,)))(
        x.clone(), Site(0, "resid_post")
    )
    torch.testing.assert_close(
        clamped,
        (x + (5.0 - feats[..., live[0], None]) * tiny_sae.W_dec[live[0]]).detach(),
        atol=1e-5,
        rtol=1e-5,
    )


def test_random_latents_exclude_and_are_seeded():
    a = random_latents(50, 5, exclude=range(10), seed=1)
    assert (
        a == random_latents(50, 5, exclude=range(10), seed=1) and len(set(a)) == 5 and min(a) >= 10
    )
    with pytest.raises(ValueError, match="cannot draw"):
        random_latents(12, 5, exclude=range(10), seed=0)


def test_spliced_loss_runs_the_layers_below_the_site_once_per_batch(
    tiny_llama, tiny_sae, monkeypatch
):
    """The layer-runner path gives the hooked path's losses (every variant, both residual
    kinds, right-padded rows of different lengths), running block 0 once per batch instead of
    once per variant; the check can fail: the variants' losses differ from each other."""
    from interp.hooks.native import decoder_layers
    from interp.sae import quality
    from interp.sae.activations import TextRow

    backend = get_backend(tiny_llama, "torch")
    texts = ["The cat sat on the mat.", "Hi", "A longer sentence about the rain in Paris and Rome."]
    rows = [TextRow(f"r{i}", "test", text=t) for i, t in enumerate(texts)]
    mean_act = torch.randn(tiny_llama.d_model, generator=torch.Generator().manual_seed(3))
    calls = []
    handle = decoder_layers(tiny_llama.hf_model)[0].register_forward_hook(
        lambda *_: calls.append(1)
    )
    try:
        for site in (Site(1, "resid_post"), Site(2, "resid_pre")):
            calls.clear()
            fast = quality.spliced_loss(
                backend, tiny_sae, site, rows, mean_act=mean_act, batch_size=2
            )
            assert len(calls) == 2  # two batches, block 0 once each
            with monkeypatch.context() as m:
                m.setattr(quality, "_runner_for", lambda b, s: None)
                calls.clear()
                hooked = quality.spliced_loss(
                    backend, tiny_sae, site, rows, mean_act=mean_act, batch_size=2
                )
                assert len(calls) == 8  # four variants per batch
            assert fast == pytest.approx(hooked, rel=1e-5, abs=1e-6, nan_ok=True)
            assert fast["ce_sae_plus_error"] == pytest.approx(fast["ce_clean"], abs=1e-4)
            assert abs(fast["ce_mean_ablated"] - fast["ce_clean"]) > 1e-3
    finally:
        handle.remove()
