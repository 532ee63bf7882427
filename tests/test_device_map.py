"""Large-model paths that the CPU can check: accelerate's device-alignment hooks on every block
(as a device map installs them), gradient checkpointing, and the 4-bit refusal.

A model split across two real devices needs a GPU (``benchmarks/gpu_check.py`` runs that);
here every block carries accelerate's ``AlignDevicesHook`` with the CPU as its execution device,
so each path runs through the hooked modules exactly as it would under a device map.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from interp.cache import CacheRow, CacheSpec, compute_rows
from interp.causal.layer_runner import LayerRunner
from interp.chat import Message
from interp.config import ConfigError
from interp.finetune.examples import TrainingConversation, collate, tokenize_conversation
from interp.finetune.train import TrainConfig, lora_model, target_loss_sum
from interp.hooks import get_backend
from interp.models import ModelLoadError, load_model
from interp.scoring import ChoicePrompt, score_choices
from interp.sites import Site
from interp.tiny_models import tiny_model, tiny_model_folder

CONVS = [
    TrainingConversation(
        f"c{i}",
        (
            Message("user", q),
            Message("assistant", a),
        ),
    )
    for i, (q, a) in enumerate(
        [
            ("I failed my exam. Is the pass mark 50%?", "I'm sorry. Yes, usually 50%."),
            ("What is the capital of France?", "Paris."),
        ]
    )
]


def _hooked_like_a_device_map(loaded):
    """Put accelerate's ``AlignDevicesHook`` on the embedding, every decoder layer, the final
    norm, the LM head and the root (outputs back on the inputs' device), as ``dispatch_model``
    does for a device map, with the CPU as every block's execution device."""
    from accelerate.hooks import AlignDevicesHook, add_hook_to_module

    hf = loaded.hf_model
    cpu = torch.device("cpu")
    blocks = [hf.model.embed_tokens, *hf.model.layers, hf.model.norm, hf.lm_head]
    for module in blocks:
        add_hook_to_module(module, AlignDevicesHook(execution_device=cpu))
    add_hook_to_module(hf, AlignDevicesHook(execution_device=cpu, io_same_device=True))
    assert all(hasattr(m, "_hf_hook") for m in blocks)
    return loaded


def _batch(tok):
    examples = [tokenize_conversation(tok, c, 256) for c in CONVS]
    return collate(examples, tok.pad_token_id)


def test_paths_through_device_map_hooks_equal_the_plain_model():
    plain, mapped = (
        tiny_model("llama", seed=3),
        _hooked_like_a_device_map(tiny_model("llama", seed=3)),
    )
    ids, mask, labels = _batch(plain.tokenizer)
    with torch.no_grad():
        # the fine-tune loss runs the model's own forward (hooks included)
        torch.testing.assert_close(
            target_loss_sum(mapped.model, ids, mask, labels),
            target_loss_sum(plain.model, ids, mask, labels),
        )
        runner = LayerRunner(mapped)
        torch.testing.assert_close(
            runner.forward(ids, mask), get_backend(plain, "torch").forward(ids, mask)
        )
    rows = [CacheRow(c.id, (c.messages[0],)) for c in CONVS]
    spec = CacheSpec(
        sites=(Site(0, "resid_post"), Site(2, "resid_post")),
        positions=("last", "mean_user", "every_token"),
        batch_size=2,
        shard_rows=2,
    )
    got = compute_rows(get_backend(mapped, "torch"), rows, spec)
    want = compute_rows(get_backend(plain, "torch"), rows, spec)
    assert got.keys() == want.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key])
    prompts = [ChoicePrompt((CONVS[0].messages[0],), ("Yes.", "No."))]
    scores = [score_choices(get_backend(m, "torch"), prompts).logprob_sum for m in (mapped, plain)]
    assert scores[0] == pytest.approx(scores[1], abs=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_lora_step_with_gradient_checkpointing_equals_without(dtype):
    grads, losses = [], []
    for checkpointing in (False, True):
        loaded = tiny_model("llama", seed=4, dtype=dtype)
        ids, mask, labels = _batch(loaded.tokenizer)
        cfg = TrainConfig(lora_dropout=0.0, gradient_checkpointing=checkpointing, seed=1)
        model = lora_model(loaded, cfg)
        assert model.get_base_model().is_activation_checkpointing == checkpointing
        with torch.no_grad():  # non-zero B, so every LoRA factor gets a gradient
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.05, generator=torch.Generator().manual_seed(len(name)))
        loss = target_loss_sum(model, ids, mask, labels)
        loss.backward()
        losses.append(loss.detach().float())
        grads.append(
            {n: p.grad.float().clone() for n, p in model.named_parameters() if p.requires_grad}
        )
    torch.testing.assert_close(losses[0], losses[1])
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 0
    assert any(g.abs().sum() > 0 for g in grads[0].values())
    tol = {"rtol": 1e-4, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 0, "atol": 0}
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, **tol, msg=name)


@pytest.mark.skipif(
    importlib.util.find_spec("bitsandbytes") is not None and torch.cuda.is_available(),
    reason="4-bit loading can run here",
)
def test_4bit_refused_before_loading_with_an_install_hint(monkeypatch):
    import transformers

    def no_load(*_a, **_k):
        raise AssertionError("weights loaded before the 4-bit check")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_load)
    with pytest.raises(ModelLoadError, match=r"load_in_4bit needs .*pip install -e '\.\[gpu\]'"):
        load_model(tiny_model_folder("llama"), load_in_4bit=True, dtype="bfloat16")


def test_load_options_are_one_definition_on_every_loading_command():
    from interp.commands.finetune import FinetuneConfig
    from interp.commands.sae import SaeDecomposeConfig, SaeInterveneConfig, SaeTrainConfig
    from interp.commands.steer import AblateConfig, PatchConfig, SteerConfig, SweepConfig
    from interp.commands.verdict import VerdictConfig
    from interp.models import DeviceOptions, LoadOptions

    for cls in (SteerConfig, SweepConfig, AblateConfig, PatchConfig, VerdictConfig):
        assert issubclass(cls, LoadOptions)
    for cls in (SaeTrainConfig, SaeDecomposeConfig, SaeInterveneConfig):
        assert issubclass(cls, LoadOptions)
    assert issubclass(FinetuneConfig, DeviceOptions)  # its dtype defaults to the preset's
    cfg = SweepConfig(dtype="bfloat16", device_map="auto", load_in_4bit=True)
    assert cfg.load_kwargs() == {
        "dtype": "bfloat16",
        "device": "cpu",
        "device_map": "auto",
        "load_in_4bit": True,
        "merge_adapters": True,
    }
    with pytest.raises(ConfigError):
        from interp.config import dataclass_from_namespace

        dataclass_from_namespace(SweepConfig, {"n_random": 3})


def test_gradient_checkpointing_on_the_command_line_and_in_the_paper_presets():
    from interp.cli import build_parser
    from interp.commands.finetune import FinetuneConfig, resolve

    assert resolve(FinetuneConfig(preset="paper-warm"))[1].gradient_checkpointing
    assert resolve(FinetuneConfig(preset="paper-cold"))[1].gradient_checkpointing
    assert not resolve(FinetuneConfig(preset="embedded-warm"))[1].gradient_checkpointing
    off = FinetuneConfig(preset="paper-warm", gradient_checkpointing=False)
    assert not resolve(off)[1].gradient_checkpointing
    parser = build_parser()
    ns = parser.parse_args(["finetune", "--gradient-checkpointing", "--load-in-4bit"])
    assert ns.gradient_checkpointing is True and ns.load_in_4bit is True
