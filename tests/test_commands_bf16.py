"""The causal and SAE commands run end to end on a tiny model loaded in bfloat16, through the
command line, with the base loaded once and the warm (and cold) adapters switched on it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from interp.cli import main
from interp.directions import Direction
from interp.tiny_models import tiny_model

N_LAYERS = 3


def _tiny_folder(folder) -> str:
    """A tiny Llama with the tiny tokenizer (small vocabulary: bf16 matmuls on a CPU are slow)."""
    loaded = tiny_model("llama", n_layers=N_LAYERS, tokenizer="tiny", seed=5)
    loaded.hf_model.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    return str(folder)


def _warmth_stand_in(_seed: int = 0):
    """A cheap deterministic warmth score (the embedding classifier trains for ~30 s on 2 cores
    and does not depend on the model's dtype)."""
    return lambda replies: np.array([(len(r) % 7) / 7 for r in replies], dtype=float)


def _save_lora(base: str, out, seed: int) -> str:
    from peft import LoraConfig, get_peft_model

    from interp.models import load_model

    torch.manual_seed(seed)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    model = get_peft_model(load_model(base).model, cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    model.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bf16")
    env = pytest.MonkeyPatch()
    env.setenv("INTERP_ARTIFACTS", str(root / "artifacts"))
    env.setattr("interp.commands.steer.warmth_scorer", _warmth_stand_in)
    env.setattr("interp.commands.verdict.warmth_scorer", _warmth_stand_in)
    base = _tiny_folder(root / "base")
    g = torch.Generator().manual_seed(0)
    for name in ("persona", "sycophancy"):  # fp32 directions, as saved by the study
        vectors = torch.randn(N_LAYERS, 64, generator=g)
        Direction(name, "mean_diff", "resid_post", "last", tuple(range(N_LAYERS)), vectors).save(
            root / "directions" / name
        )
    yield {
        "base": base,
        "warm": _save_lora(base, root / "warm", 1),
        "cold": _save_lora(base, root / "cold", 2),
        "directions": str(root / "directions"),
        "root": root,
    }
    env.undo()


def _meta(folder) -> dict:
    return json.loads((folder / "meta.json").read_text())


def _bf16(inputs) -> list[str]:
    return ["--dtype", "bfloat16", "-m", inputs["base"]]


SMALL = ["--n-requests", "2", "--max-new-tokens", "2", "--n-boot", "20", "--seed", "1"]


def test_steer_in_bfloat16(inputs, capsys):
    persona = str(inputs["root"] / "directions" / "persona")
    argv = ["steer", "Hello there", "--direction", persona, "--layer", "1"]
    assert main([*argv, "--alphas", "0", "0.5", "--max-new-tokens", "2", *_bf16(inputs)]) == 0
    assert "personaatlayer1" in "".join(capsys.readouterr().out.split())  # rich wraps lines


@pytest.mark.slow
def test_ablate_in_bfloat16(inputs):
    out = inputs["root"] / "ablate"
    argv = ["ablate", "--warm", inputs["warm"], "--directions", inputs["directions"]]
    argv += ["--per-task", "2", "--n-random", "10", "--layers", "1", "--add-layer", "1"]
    assert main([*argv, *SMALL, *_bf16(inputs), "--out", str(out)]) == 0
    meta = _meta(out)
    assert meta["dtype"] == "bfloat16" and meta["adapter"] is None  # the original's provenance
    assert meta["warm"] == f"adapter {inputs['warm']}"
    assert (out / "verdict.csv").is_file()


@pytest.mark.slow
def test_verdict_in_bfloat16_with_a_cold_adapter_on_the_same_weights(inputs):
    out = inputs["root"] / "verdict"
    argv = ["verdict", "--warm", inputs["warm"], "--cold", inputs["cold"]]
    argv += ["--directions", inputs["directions"], "--targets", "persona", "--layers", "1"]
    argv += ["--n-random", "20", "--per-task-derivation", "2", "--per-task-evaluation", "1"]
    argv += ["--n-damage-prompts", "2", "--damage-tokens", "2", "--n-heldout", "2"]
    assert main([*argv, *SMALL, *_bf16(inputs), "--out", str(out)]) == 0
    meta = _meta(out)
    assert meta["dtype"] == "bfloat16" and meta["cold"] == inputs["cold"]
    assert meta["config"]["dtype"] == "bfloat16"


def test_sae_train_in_bfloat16(inputs, monkeypatch):
    from interp.commands import sae as command

    monkeypatch.setitem(  # the command line's default preset, shrunk
        command.PRESETS,
        "embedded",
        {
            "per_task": 1,
            "n_responses": 2,
            "max_total_tokens": 1500,
            "d_sae": 32,
            "k": 4,
            "n_samples": 2048,
            "n_persona": 6,
        },
    )
    out = inputs["root"] / "sae"
    argv = ["sae", "train", "-m", inputs["base"], "--dtype", "bfloat16"]
    argv += ["--directions", str(inputs["root"] / "directions" / "persona"), "--out", str(out)]
    assert main(argv) == 0
    quality = json.loads((out / "sae_quality.json").read_text())
    assert _meta(out)["dtype"] == "bfloat16"
    # the reconstruction plus its error equals the clean activation: the clean loss, in bf16
    assert quality["spliced"]["ce_sae_plus_error"] == pytest.approx(
        quality["spliced"]["ce_clean"], abs=0.05
    )
