"""A pair loads the base once: the original is the warm model with its adapter switched off.

Every check compares a view of the shared model with a fresh load (without, or with, the
adapter): logits, greedy generation, forced-choice scores, reads and edits, and the layer
runner, in interleaved order.
"""

from __future__ import annotations

import pytest
import torch

from interp.causal.layer_runner import LayerRunner
from interp.causal.pair import load_pair
from interp.chat import Message
from interp.hooks import get_backend
from interp.models import ModelLoadError, adapter_switched, load_model
from interp.scoring import ChoicePrompt, score_choices
from interp.sites import Site
from interp.tiny_models import tiny_model_folder

TARGETS = ["q_proj", "v_proj", "down_proj"]


def _save_lora(base_folder: str, out, seed: int) -> None:
    """A LoRA adapter with random (non-zero) A and B, so it changes every output."""
    from peft import LoraConfig, get_peft_model

    loaded = load_model(base_folder)
    torch.manual_seed(seed)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, init_lora_weights=False)
    model = get_peft_model(loaded.model, cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    model.save_pretrained(out)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    base = tiny_model_folder("llama")
    root = tmp_path_factory.mktemp("adapters")
    _save_lora(base, root / "warm", seed=1)
    _save_lora(base, root / "cold", seed=2)
    return base, root / "warm", root / "cold"


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 200, (2, 7), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :2] = 0  # a left-padded row
    return ids, mask


def _logits(loaded, ids, mask):
    with torch.no_grad():
        return get_backend(loaded, "torch").forward(ids, mask)


def test_views_equal_fresh_loads_in_any_order(folders, batch):
    base, warm, cold = folders
    ids, mask = batch
    pair = load_pair(base, str(warm))
    assert pair.original.model is pair.warm.model  # one copy of the weights
    assert pair.original.adapter is None and pair.warm.adapter == str(warm)
    assert pair.original.weights_hash == pair.warm.weights_hash
    plain = _logits(load_model(base), ids, mask)
    tuned = _logits(load_model(base, adapter=warm), ids, mask)
    assert not torch.allclose(plain, tuned, atol=1e-3)  # the adapter matters
    grads = [p.requires_grad for p in pair.warm.model.parameters()]
    for which in ("original", "warm", "warm", "original", "original", "warm"):
        got = _logits(pair.original if which == "original" else pair.warm, ids, mask)
        torch.testing.assert_close(got, plain if which == "original" else tuned)
    # switching leaves no trace: requires_grad as loaded, the adapter on outside any view
    assert [p.requires_grad for p in pair.warm.model.parameters()] == grads
    with torch.no_grad():
        outside = pair.warm.model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(outside, pair.warm.model(input_ids=ids, attention_mask=mask).logits)
    with (
        pytest.raises(ModelLoadError, match="no adapter named"),
        adapter_switched(pair.warm.model, "nonexistent"),
    ):
        pass

    # a third fine-tune of the same base shares the weights too
    cold_view = pair.with_adapter(cold, "cold")
    assert cold_view.model is pair.warm.model and cold_view.adapter == str(cold)
    cold_fresh = _logits(load_model(base, adapter=cold), ids, mask)
    for loaded, want in ((cold_view, cold_fresh), (pair.warm, tuned), (pair.original, plain)):
        torch.testing.assert_close(_logits(loaded, ids, mask), want)


def test_generation_scores_hooks_and_runner_through_both_views(folders, batch):
    base, warm, _ = folders
    ids, mask = batch
    pair = load_pair(base, str(warm))
    fresh = {"original": load_model(base), "warm": load_model(base, adapter=warm)}
    prompts = [
        ChoicePrompt((Message("user", "Is the sky green?"),), ("Yes.", "No, it is blue.")),
        ChoicePrompt((Message("user", "Two plus two?"),), ("Four.", "Five.")),
    ]
    site = Site(1, "resid_post")

    def edit(x, _site):
        return x * 0.5

    for which in ("original", "warm", "original", "warm"):
        view, ref = pair.backend(which), get_backend(fresh[which], "torch")
        gen = {}
        for name, b in (("view", view), ("fresh", ref)):
            with torch.no_grad():
                new = b.generate(ids, mask, max_new_tokens=5, do_sample=False)
                scores = score_choices(b, prompts)
                with b.hooked(read=[site], edit={site: edit}) as rec:
                    edited = b.forward(ids, mask)
            gen[name] = (new, scores.logprob_sum, rec[site], edited)
        assert torch.equal(gen["view"][0], gen["fresh"][0])
        assert gen["view"][1] == pytest.approx(gen["fresh"][1], abs=1e-5)
        torch.testing.assert_close(gen["view"][2], gen["fresh"][2])
        torch.testing.assert_close(gen["view"][3], gen["fresh"][3])
        # the layer runner executes the decoder layers directly: also inside the view's state
        runner = LayerRunner(pair.original if which == "original" else pair.warm)
        torch.testing.assert_close(
            runner.forward(ids, mask), get_backend(fresh[which], "torch").forward(ids, mask)
        )


def test_stand_in_without_adapter_loads_once(folders):
    base, _, _ = folders
    pair = load_pair(base, None, dtype="bfloat16")
    assert pair.original is pair.warm and pair.warm_system
    assert pair.original.dtype == torch.bfloat16
    with pytest.raises(ModelLoadError, match="adapter_config"):
        load_pair(base, "/nonexistent/adapter", stand_in_if_missing=False)


def test_a_switch_sets_the_layers_directly_and_leaves_grads_alone(folders, batch, monkeypatch):
    """The common case (LoRA layers only) never calls PEFT's model-wide ``set_adapter``."""
    import interp.models as models

    base, warm, _ = folders
    ids, mask = batch
    pair = load_pair(base, str(warm))

    def refuse(*_a, **_k):
        raise AssertionError("PEFT's set_adapter was called for a plain LoRA model")

    monkeypatch.setattr(models, "_set_adapter_state", refuse)
    grads = [p.requires_grad for p in pair.warm.model.parameters()]
    record = pair.warm.model.base_model.active_adapter
    tuned = _logits(load_model(base, adapter=warm), ids, mask)
    plain = _logits(load_model(base), ids, mask)
    for which in ("warm", "original", "warm"):
        got = _logits(pair.warm if which == "warm" else pair.original, ids, mask)
        torch.testing.assert_close(got, tuned if which == "warm" else plain)
        assert [p.requires_grad for p in pair.warm.model.parameters()] == grads
        assert pair.warm.model.base_model.active_adapter == record  # as it was, type included
        assert type(pair.warm.model.base_model.active_adapter) is type(record)


def test_an_adapter_with_modules_to_save_switches_through_peft(tmp_path, batch):
    """A fully trained module (here the LM head) has its own active copy, which only PEFT's
    ``set_adapter`` switches: such a model takes that path and still equals fresh loads."""
    from peft import LoraConfig, get_peft_model

    base = tiny_model_folder("llama")
    ids, mask = batch
    model = get_peft_model(
        load_model(base).model,
        LoraConfig(
            r=4, target_modules=TARGETS, modules_to_save=["lm_head"], init_lora_weights=False
        ),
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "modules_to_save" in name:
                p.add_(0.5)
    model.save_pretrained(tmp_path / "saved")
    pair = load_pair(base, str(tmp_path / "saved"))
    tuned = _logits(load_model(base, adapter=tmp_path / "saved"), ids, mask)
    plain = _logits(load_model(base), ids, mask)
    assert not torch.allclose(tuned, plain, atol=1e-3)
    grads = [p.requires_grad for p in pair.warm.model.parameters()]
    for which in ("original", "warm", "original", "warm"):
        got = _logits(pair.warm if which == "warm" else pair.original, ids, mask)
        torch.testing.assert_close(got, tuned if which == "warm" else plain)
    assert [p.requires_grad for p in pair.warm.model.parameters()] == grads


def test_merged_adapters_compute_what_the_adapter_layers_compute(folders, batch):
    """With ``merge_adapters`` a pair holds two models, the warm one with its adapter folded
    into the weights (no adapter layers left), computing what the adapter layers compute; a
    third fine-tune loads merged too; provenance says so."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    base, warm, cold = folders
    ids, mask = batch
    pair = load_pair(base, str(warm), merge_adapters=True)
    assert pair.original.model is not pair.warm.model
    assert pair.warm.adapter == str(warm) and pair.warm.provenance()["adapter_merged"]
    assert not pair.original.provenance()["adapter_merged"] and pair.original.adapter is None
    assert not any(isinstance(m, BaseTunerLayer) for m in pair.warm.model.modules())
    plain = _logits(load_model(base), ids, mask)
    tuned = _logits(load_model(base, adapter=warm), ids, mask)
    torch.testing.assert_close(_logits(pair.original, ids, mask), plain)
    torch.testing.assert_close(_logits(pair.warm, ids, mask), tuned, atol=1e-5, rtol=1e-4)
    cold_model = pair.with_adapter(cold, "cold")
    assert cold_model.provenance()["adapter_merged"] and cold_model.model is not pair.warm.model
    cold_layers = _logits(load_model(base, adapter=cold), ids, mask)
    torch.testing.assert_close(_logits(cold_model, ids, mask), cold_layers, atol=1e-5, rtol=1e-4)
