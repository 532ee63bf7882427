"""Hook sites on every architecture: exact on Llama, Mistral, Qwen2 and Phi-3; Gemma-2's
sandwich-normed attn_out / resid_mid are refused by name. Real shapes match the real models'
parameter counts (built on the meta device, nothing allocated)."""

from __future__ import annotations

import pytest
import torch

from interp.hooks import get_backend
from interp.hooks.base import HookError
from interp.sites import Site
from interp.tiny_models import REAL_PARAMETER_COUNTS, REAL_SHAPES, real_shape_model, tiny_model

EXACT = ("llama", "mistral", "qwen2", "phi3")


def _inputs():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 200, (2, 5), generator=g)
    return ids, torch.ones_like(ids)


@pytest.mark.parametrize("arch", EXACT)
def test_sites_compose_exactly(arch):
    loaded = tiny_model(arch, n_layers=2)
    backend = get_backend(loaded, "torch")
    ids, mask = _inputs()
    sites = [Site(1, k) for k in ("resid_pre", "attn_out", "resid_mid", "mlp_out", "resid_post")]
    with torch.no_grad():
        hidden = loaded.model(ids, attention_mask=mask, output_hidden_states=True).hidden_states
        with backend.hooked(read=sites) as rec:
            backend.forward(ids, mask)
    r = {s.kind: rec[s] for s in sites}
    torch.testing.assert_close(r["resid_pre"], hidden[1])
    torch.testing.assert_close(r["resid_mid"], r["resid_pre"] + r["attn_out"])
    torch.testing.assert_close(r["resid_post"], r["resid_mid"] + r["mlp_out"])


def test_gemma2_refuses_sandwich_normed_sites_and_keeps_the_residual():
    loaded = tiny_model("gemma2", n_layers=2)
    backend = get_backend(loaded, "torch")
    ids, mask = _inputs()
    for kind in ("attn_out", "resid_mid"):
        with (
            pytest.raises(HookError, match=rf"{kind} is not supported on gemma2"),
            backend.hooked(read=[Site(0, kind)]),
        ):
            backend.forward(ids, mask)
    with torch.no_grad():
        hidden = loaded.model(ids, attention_mask=mask, output_hidden_states=True).hidden_states
        with backend.hooked(read=[Site(0, "resid_post"), Site(0, "resid_pre")]) as rec:
            backend.forward(ids, mask)
    torch.testing.assert_close(rec[Site(0, "resid_post")], hidden[1])
    torch.testing.assert_close(rec[Site(0, "resid_pre")], hidden[0])


@pytest.mark.parametrize("name", sorted(REAL_SHAPES))
def test_real_shapes_have_the_real_parameter_counts(name):
    model = real_shape_model(name, device="meta")
    assert sum(p.numel() for p in model.parameters()) == REAL_PARAMETER_COUNTS[name]
    tied = model.get_input_embeddings().weight is model.get_output_embeddings().weight
    assert tied == (name == "smollm2-135m-instruct")


def test_phi3_fused_projections_are_the_linear_modules():
    loaded = tiny_model("phi3", n_layers=1)
    names = {
        n.rsplit(".", 1)[-1]
        for n, m in loaded.model.named_modules()
        if isinstance(m, torch.nn.Linear) and ".layers." in n
    }
    assert names == {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}


def test_layer_runner_refuses_gemma2_by_name():
    from interp.causal.layer_runner import LayerRunner, RunnerError

    with pytest.raises(RunnerError, match=r"gemma2.*soft-capping"):
        LayerRunner(tiny_model("gemma2", n_layers=2))


def test_lora_reaches_every_linear_layer_of_phi3_and_llama():
    from peft import LoraConfig, get_peft_model

    from interp.finetune.train import LINEAR_MODULES

    for arch, fused in (("phi3", {"qkv_proj", "gate_up_proj"}), ("llama", {"q_proj", "up_proj"})):
        model = tiny_model(arch, n_layers=1).hf_model
        peft = get_peft_model(model, LoraConfig(r=2, target_modules=list(LINEAR_MODULES)))
        wrapped = {n.rsplit(".", 1)[-1] for n, m in peft.named_modules() if hasattr(m, "lora_A")}
        assert fused <= wrapped and "o_proj" in wrapped and "down_proj" in wrapped, (arch, wrapped)
