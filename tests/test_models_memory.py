"""Memory at load: the weights fingerprint sums large parameters in chunks (no full float64
copy) and stays compatible with hashes recorded before; load_model loads straight to a device."""

from __future__ import annotations

import json
from unittest import mock

import pytest
import torch

from interp import models, paths
from interp.models import ModelLoadError, attach_adapter, load_model, weights_fingerprint
from interp.tiny_models import tiny_model, tiny_model_folder


def test_small_models_keep_their_fingerprint(monkeypatch):
    loaded = tiny_model("llama", seed=1)
    before = weights_fingerprint(loaded.model, legacy=True)
    assert weights_fingerprint(loaded.model) == before == loaded.weights_hash


def test_large_parameters_are_summed_in_chunks_without_a_full_float64_copy(monkeypatch):
    model = torch.nn.Linear(64, 64)
    monkeypatch.setattr(models, "FINGERPRINT_CHUNK", 1000)
    biggest: list[int] = []
    real_double = torch.Tensor.double

    def spy(self, *a, **k):
        biggest.append(self.numel())
        return real_double(self, *a, **k)

    with mock.patch.object(torch.Tensor, "double", spy):
        chunked = weights_fingerprint(model)
    assert max(biggest) <= 1000
    # the chunked sum agrees with the full one to the hash's rounding on ordinary weights
    assert chunked == weights_fingerprint(model, legacy=True)
    with torch.no_grad():
        model.weight[3, 5] += 0.01
    assert weights_fingerprint(model) != chunked


def test_adapters_recorded_with_the_legacy_hash_still_attach(tmp_path, monkeypatch):
    from peft import LoraConfig, get_peft_model

    base = tiny_model("llama", seed=1)
    legacy = "0123456789abcdef"
    folder = tmp_path / "adapter"
    peft_model = get_peft_model(
        tiny_model("llama", seed=1).model, LoraConfig(r=2, target_modules=["q_proj"])
    )
    peft_model.save_pretrained(folder)
    (folder / paths.META_FILE).write_text(json.dumps({"base_weights_hash": legacy}))
    monkeypatch.setattr(models, "FINGERPRINT_CHUNK", 100)  # the tiny model now has "large" params
    real = models.weights_fingerprint
    monkeypatch.setattr(
        models,
        "weights_fingerprint",
        lambda m, legacy=False: "0123456789abcdef" if legacy else real(m),
    )
    attach_adapter(base, folder)  # accepted through the legacy recipe
    other = tiny_model("llama", seed=2)
    monkeypatch.setattr(
        models, "weights_fingerprint", lambda m, legacy=False: "ffff" if legacy else real(m)
    )
    with pytest.raises(ModelLoadError, match="trained on base weights"):
        attach_adapter(other, folder)


def test_load_model_loads_directly_to_the_device(monkeypatch):
    folder = tiny_model_folder("llama", n_layers=2)
    from transformers import AutoModelForCausalLM

    seen: list[dict] = []
    real = AutoModelForCausalLM.from_pretrained

    def spy(location, **kwargs):
        seen.append(kwargs)
        kwargs = {k: v for k, v in kwargs.items() if k != "device_map"}  # no GPU here
        return real(location, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    with mock.patch.object(torch.nn.Module, "to", side_effect=AssertionError("moved after load")):
        load_model(folder, device="cuda:1", dtype="bfloat16")
    assert seen[-1]["device_map"] == "cuda:1" and seen[-1]["dtype"] == torch.bfloat16
    load_model(folder, device="cuda", device_map="auto")
    assert seen[-1]["device_map"] == "auto"
    loaded = load_model(folder)
    assert "device_map" not in seen[-1] and loaded.device.type == "cpu"
