"""Weight orthogonalisation equals all-layer runtime ablation (tiny model, LoRA, embedded model).

Tolerances: 1e-5 absolute on logits of the tiny fp32 model; 2e-3 absolute on the embedded
model's logits (fp32 through 30 layers, logits of size ~20; the float32 rounding of the edited
weights differs from that of the runtime projection).
"""

from __future__ import annotations

import json

import pytest
import torch

from interp.directions import Direction
from interp.hooks import get_backend
from interp.models import load_model
from interp.orthogonalize import OrthogonalizeError, orthogonalize, save_orthogonalized
from interp.steer import ablation_everywhere, projection


def _ids(seed=0, batch=2, pos=8, vocab=200):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (batch, pos), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    return ids, mask


def _compare(loaded, unit, ids, mask):
    backend = get_backend(loaded, "torch")
    with torch.no_grad(), backend.hooked(edit=ablation_everywhere(unit, loaded.n_layers)):
        runtime = backend.forward(ids, mask)
    ortho = orthogonalize(loaded, unit, "test")
    with torch.no_grad():
        weights = get_backend(ortho, "torch").forward(ids, mask)
        plain = backend.forward(ids, mask)
    return runtime, weights, plain, ortho


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_orthogonalized_weights_match_runtime_ablation_on_tiny_models(arch):
    from interp.tiny_models import tiny_model

    loaded = tiny_model(arch, n_layers=3)
    unit = torch.randn(loaded.d_model, generator=torch.Generator().manual_seed(1))
    ids, mask = _ids()
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    runtime, weights, plain, ortho = _compare(loaded, unit, ids, mask)
    keep = mask.bool()
    torch.testing.assert_close(weights[keep], runtime[keep], atol=1e-5, rtol=0)
    assert (weights - plain).abs().max() > 1e-3, "the ablation should change the logits"
    for k, v in loaded.model.state_dict().items():
        assert torch.equal(v, before[k]), f"original weight {k} was modified"
    site = __import__("interp.sites", fromlist=["Site"]).Site
    with torch.no_grad(), get_backend(ortho, "torch").hooked(read=[site(1, "resid_post")]) as rec:
        get_backend(ortho, "torch").forward(ids, mask)
    assert projection(rec[site(1, "resid_post")], unit / unit.norm()).abs().max() < 1e-4


def test_orthogonalization_merges_a_lora_adapter_first(fresh_tiny_llama):
    from peft import LoraConfig, get_peft_model

    loaded = fresh_tiny_llama
    loaded.model = get_peft_model(
        loaded.model,
        LoraConfig(
            r=4,
            lora_alpha=8,
            target_modules=["o_proj", "down_proj", "q_proj"],
            init_lora_weights=False,
        ),
    ).eval()
    loaded.adapter = "random-lora"
    unit = torch.randn(loaded.d_model, generator=torch.Generator().manual_seed(2))
    ids, mask = _ids(1)
    runtime, weights, _, ortho = _compare(loaded, unit, ids, mask)
    keep = mask.bool()
    torch.testing.assert_close(weights[keep], runtime[keep], atol=1e-5, rtol=0)
    assert not hasattr(ortho.model, "peft_config")
    assert hasattr(loaded.model, "peft_config"), "the original keeps its adapter"


def test_save_and_reload_the_orthogonalized_checkpoint(fresh_tiny_llama, tmp_path):
    # a model another test has bridged (TransformerLens wraps modules in place) cannot be
    # saved by save_pretrained; the saved copy must come from an unbridged model
    tiny_llama = fresh_tiny_llama
    unit = torch.randn(tiny_llama.d_model, generator=torch.Generator().manual_seed(3))
    direction = Direction("warmth", "mean_diff", "resid_post", "last", (1,), unit[None])
    ortho = orthogonalize(tiny_llama, direction.unit(1), "warmth")
    folder = save_orthogonalized(ortho, tmp_path / "ortho", direction, layer=1)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["direction"]["name"] == "warmth" and meta["direction"]["layer"] == 1
    reloaded = load_model(str(folder))
    ids, mask = _ids(2)
    with torch.no_grad():
        a = get_backend(ortho, "torch").forward(ids, mask)
        b = get_backend(reloaded, "torch").forward(ids, mask)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    with pytest.raises(FileExistsError):
        save_orthogonalized(ortho, folder, direction, layer=1)


def test_zero_direction_is_refused(tiny_llama):
    with pytest.raises(OrthogonalizeError, match="zero"):
        orthogonalize(tiny_llama, torch.zeros(tiny_llama.d_model))


@pytest.mark.embedded
def test_orthogonalized_weights_match_runtime_ablation_on_the_embedded_model(embedded):
    unit = torch.randn(embedded.d_model, generator=torch.Generator().manual_seed(4))
    ids, mask = _ids(3, batch=2, pos=12, vocab=5000)
    runtime, weights, plain, _ = _compare(embedded, unit, ids, mask)
    keep = mask.bool()
    torch.testing.assert_close(weights[keep], runtime[keep], atol=2e-3, rtol=0)
    assert (weights[keep] - plain[keep]).abs().max() > 2e-2
