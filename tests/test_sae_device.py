"""The SAE goes to the device of the layer it reads and keeps its own dtype; activations in
another dtype (a bf16 model) are cast on the way in and back on the way out. (Two devices need a
GPU; here the checks are that the move targets the layer's device and that every decomposition
result comes back on the CPU.)"""

from __future__ import annotations

import pytest
import torch

from interp.hooks import get_backend
from interp.hooks.native import decoder_layers
from interp.sae.decompose import decoder_cosines, latent_attribution, overlap_nulls
from interp.sae.intervene import LatentEdit, encode_decode, sae_edit, sae_splice
from interp.sae.load import site_device, to_site_device
from interp.sae.train import SaeTrainSpec, to_inference, train_sae
from interp.sites import Site
from interp.tiny_models import tiny_model


@pytest.fixture(scope="module")
def bf16_model():
    return tiny_model("llama", n_layers=3, dtype=torch.bfloat16)


@pytest.fixture(scope="module")
def sae(bf16_model, tmp_path_factory):
    torch.manual_seed(0)
    acts = torch.randn(2048, bf16_model.d_model)
    spec = SaeTrainSpec(
        d_sae=64, k=4, batch_size=256, n_samples=1024, n_checkpoints=0, norm_batches=2
    )
    trained, _ = train_sae(acts, spec)
    return to_inference(trained, tmp_path_factory.mktemp("sae") / "sae")


def test_the_sae_moves_to_its_layers_device_and_keeps_its_dtype(bf16_model, sae):
    site = Site(1, "resid_post")
    layer = decoder_layers(bf16_model.hf_model)[1]
    assert site_device(bf16_model.hf_model, site) == next(layer.parameters()).device
    moved = to_site_device(sae, bf16_model.hf_model, site)
    assert moved.W_dec.device == next(layer.parameters()).device
    assert moved.W_dec.dtype == torch.float32  # the SAE keeps fp32 beside bf16 activations


def test_a_bf16_model_runs_an_fp32_sae_at_its_site(bf16_model, sae):
    site = Site(1, "resid_post")
    sae = to_site_device(sae, bf16_model.hf_model, site)
    backend = get_backend(bf16_model, "torch")
    ids = torch.tensor([[5, 9, 13, 2, 7, 21, 4]])

    def logits(edit=None):
        with torch.no_grad(), backend.hooked(edit=edit):
            return backend.forward(ids, torch.ones_like(ids))

    clean = logits()
    spliced = logits({site: sae_splice(sae, with_error=True)})
    assert spliced.dtype == clean.dtype == torch.bfloat16
    torch.testing.assert_close(spliced, clean, atol=0.05, rtol=0.02)
    ablated = logits({site: sae_edit(sae, LatentEdit("ablate", tuple(range(64))))})
    assert torch.isfinite(ablated.float()).all() and (ablated - clean).abs().max() > 0

    x = torch.randn(4, bf16_model.d_model).bfloat16()
    feats, recon = encode_decode(sae, x)
    assert feats.dtype == torch.float32 and feats.device == sae.W_dec.device
    assert recon.dtype == torch.bfloat16 and recon.device == x.device


def test_decomposition_results_come_back_on_the_cpu(bf16_model, sae):
    d = bf16_model.d_model
    direction = torch.randn(d)
    cos = decoder_cosines(sae, direction)
    attr = latent_attribution(sae, torch.randn(8, d), torch.randn(8, d), direction)
    assert cos.device.type == "cpu" and attr.device.type == "cpu" and cos.shape == (64,)
    rows = overlap_nulls(sae, [0, 1, 2], [2, 3, 4], n=50)
    assert [r["null"] for r in rows] == ["random-latents", "random-direction"]
