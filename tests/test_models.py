"""Model loading: registry errors, adapters, the embedded checkpoint cache and its repair."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from interp import paths
from interp.artifacts import ArtifactExistsError, atomic_dir
from interp.models import EMBEDDED, ModelLoadError, attach_adapter, embedded_checkpoint, load_model
from interp.tiny_models import tiny_model


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(ModelLoadError) as info:
        load_model("gpt-17-ultra")
    message = str(info.value)
    assert "unknown model 'gpt-17-ultra'" in message
    assert EMBEDDED in message and "llama-3.1-8b-instruct" in message


def test_missing_local_folder_is_named(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(str(missing))
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        load_model(str(not_a_model))


def _save_adapter(loaded, folder, meta=None):
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(
        loaded.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    )
    peft_model.save_pretrained(folder)
    if meta is not None:
        (folder / paths.META_FILE).write_text(json.dumps(meta))
    return peft_model


def test_adapter_round_trip_and_mismatches(tmp_path):
    base = tiny_model("llama", seed=1)
    folder = tmp_path / "adapter"
    _save_adapter(
        base, folder, meta={"base_weights_hash": tiny_model("llama", seed=1).weights_hash}
    )
    fresh = tiny_model("llama", seed=1)
    attach_adapter(fresh, folder)
    assert fresh.adapter == str(folder) and fresh.adapter_hash
    assert fresh.hf_model.__class__.__name__ == "LlamaForCausalLM"

    other_width = tiny_model("llama", d_model=32, n_heads=2, n_kv_heads=1, seed=1)
    plain = tmp_path / "adapter-no-meta"
    _save_adapter(tiny_model("llama", seed=1), plain)
    with pytest.raises(ModelLoadError, match="does not fit"):
        attach_adapter(other_width, plain)

    other_weights = tiny_model("llama", seed=2)
    with pytest.raises(ModelLoadError, match="trained on base weights"):
        attach_adapter(other_weights, folder)

    with pytest.raises(ModelLoadError, match=r"no adapter_config\.json"):
        attach_adapter(tiny_model("llama"), tmp_path)


def test_atomic_dir_leaves_nothing_on_failure_and_refuses_overwrite(tmp_path):
    target = tmp_path / "artifact"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("killed")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "done.bin").write_bytes(b"y")
    assert (target / "done.bin").read_bytes() == b"y"
    with pytest.raises(ArtifactExistsError), atomic_dir(target):
        pass
    with atomic_dir(target, replace=True) as tmp:
        (tmp / "new.bin").write_bytes(b"z")
    kept = [p.name for p in tmp_path.iterdir()]
    assert any(n.startswith("artifact.replaced-") for n in kept), "the old one is moved aside"


def test_tiny_models_are_seeded_and_of_real_architectures():
    a, b = tiny_model("llama", seed=3), tiny_model("llama", seed=3)
    assert a.weights_hash == b.weights_hash
    assert tiny_model("llama", seed=4).weights_hash != a.weights_hash
    for arch, cls in (("mistral", "MistralForCausalLM"), ("qwen2", "Qwen2ForCausalLM")):
        m = tiny_model(arch)  # type: ignore[arg-type]
        assert type(m.model).__name__ == cls
        with torch.no_grad():
            out = m.model(torch.tensor([[1, 2, 3]])).logits
        assert out.shape == (1, 3, len(m.tokenizer))


@pytest.mark.embedded
def test_embedded_checkpoint_is_verified_and_rebuilt_when_corrupt(tmp_path, monkeypatch):
    source = embedded_checkpoint()
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path))
    copy = paths.model_cache_dir(EMBEDDED)
    shutil.copytree(source, copy)
    assert embedded_checkpoint() == copy  # verified, reused
    weights = copy / "model.safetensors"
    with open(weights, "r+b") as fh:
        fh.seek(weights.stat().st_size // 2)
        fh.write(b"\x00\x01\x02\x03")
    good = json.loads((copy / paths.CHECKSUMS_FILE).read_text())["model.safetensors"]
    rebuilt = embedded_checkpoint()
    assert json.loads((rebuilt / paths.CHECKSUMS_FILE).read_text())["model.safetensors"] == good
    from interp.artifacts import sha256_file

    assert sha256_file(rebuilt / "model.safetensors") == good


@pytest.mark.embedded
def test_embedded_model_answers_paris_greedily(embedded):
    from interp.chat import as_messages
    from interp.generate import SamplingConfig, generate_replies
    from interp.hooks import get_backend

    [reply] = generate_replies(
        get_backend(embedded, "torch"),
        [as_messages("What is the capital of France?")],
        SamplingConfig(max_new_tokens=20, temperature=0.0),
    )
    assert "Paris" in reply
    assert embedded.n_layers == 30 and embedded.d_model == 576


def test_missing_adapter_is_reported_before_any_weights_load(tmp_path, monkeypatch):
    import interp.models as models

    monkeypatch.setattr(models, "_resolve", lambda name: pytest.fail("weights must not be touched"))
    with pytest.raises(ModelLoadError, match=r"no adapter_config\.json"):
        load_model(EMBEDDED, adapter=tmp_path)
