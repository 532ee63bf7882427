"""`interp directions`, `interp probes` and `interp trajectory` end to end on a tiny model with
random LoRA adapters: exact output columns, the fine-tune direction equals the hidden-state
difference computed directly, caches are shared and reruns reuse every result."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from rich.console import Console

from interp.chat import encode_chat
from interp.cli import main
from interp.commands.directions import DirectionsConfig, run_directions
from interp.commands.probes import ProbesConfig, run_probes
from interp.commands.trajectory import TrajectoryConfig, run_trajectory
from interp.config import ConfigError
from interp.definitions.inputs import eval_prompts
from interp.directions import Direction
from interp.evaluate import conversation
from interp.models import load_model
from interp.tiny_models import tiny_model

COMMON = dict(per_task=3, persona_split="held_out", batch_size=16)


def _visible(folder: Path) -> set[Path]:
    """The entries of ``folder`` but hidden ones (a cache's build lock sits beside it as
    ``.<name>.lock``: interp.cache.building)."""
    return {f for f in folder.iterdir() if not f.name.startswith(".")}


def _adapter(model_folder, out, epoch, seed, scale=1.0):
    from peft import LoraConfig, get_peft_model

    loaded = load_model(model_folder)
    torch.manual_seed(seed)
    cfg = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False
    )
    peft = get_peft_model(loaded.hf_model, cfg)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.mul_(scale)
    peft.save_pretrained(out)
    (out / "meta.json").write_text(
        json.dumps({"epoch": epoch, "base_weights_hash": loaded.weights_hash, "variant": "warm"})
    )
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    model = root / "tiny-model"  # the small BPE tokenizer keeps the unembedding cheap
    loaded = tiny_model("llama", n_layers=3, tokenizer="tiny")
    loaded.hf_model.save_pretrained(model)
    loaded.tokenizer.save_pretrained(model)
    model = str(model)
    run = root / "artifacts" / "finetune" / "tiny-warm"
    _adapter(model, run / "checkpoints" / "epoch-1.0", 1.0, seed=1, scale=0.5)
    final = _adapter(model, run / "checkpoints" / "epoch-2.0", 2.0, seed=2)
    (run / "warmth_by_epoch.csv").write_text(
        "variant,epoch,instrument,mean,ci_low,ci_high,n\noriginal,0.0,lexical,0.1,0,1,5\nwarm,1.0,lexical,0.3,0,1,5\nwarm,2.0,lexical,0.8,0,1,5\n"
    )
    return root, model, run, final


def _console():
    return Console(file=io.StringIO(), width=120)


def test_directions_probes_and_trajectory(setup, monkeypatch):
    root, model, _run, adapter = setup
    monkeypatch.setenv("INTERP_ARTIFACTS", str(root / "artifacts"))
    config = DirectionsConfig(model=model, adapter=str(adapter), n_splits=5, **COMMON)
    console = _console()
    assert run_directions(config, console) == 0
    out = root / "artifacts" / "directions"
    (folder,) = [f for f in out.iterdir() if f.is_dir() and not f.name.startswith(".")]
    stability = pd.read_csv(folder / "direction_stability.csv")
    cosines = pd.read_csv(folder / "direction_cosines.csv")
    assert list(stability.columns) == [
        "direction",
        "layer",
        "cosine",
        "ci_low",
        "ci_high",
        "null_cosine",
        "null_high",
        "relative_norm",
    ]
    assert list(cosines.columns) == ["layer", "a", "b", "cosine"]
    names = ["finetune", "persona", "sad_context", "sycophancy", "sycophancy_ab"]
    assert sorted(stability["direction"].unique()) == names and sorted(
        stability["layer"].unique()
    ) == [0, 1, 2]
    assert len(cosines) == 3 * 10 and cosines["cosine"].between(-1, 1).all()
    for name in names:
        d = Direction.load(folder / name)
        assert d.layers == (0, 1, 2) and d.vectors.shape == (3, 64) and d.site_kind == "resid_post"
    assert Direction.load(folder / "persona").position == "mean_assistant"
    assert Direction.load(folder / "sycophancy_ab").position == "last_assistant"
    ft = stability[stability["direction"] == "finetune"]
    assert (ft["cosine"] > 0.9).all() and (
        ft["ci_low"] > ft["null_high"]
    ).all()  # a random LoRA shifts every prompt alike

    # the fine-tune direction equals mean(adapter - base) of the hidden states, computed directly
    prompts = eval_prompts(DirectionsConfig(model=model, **COMMON))
    diffs = []
    for with_adapter in (False, True):
        loaded = load_model(model, adapter=str(adapter) if with_adapter else None)
        rows = []
        for p in prompts:
            ids = torch.tensor([encode_chat(loaded.tokenizer, conversation(p)).input_ids])
            with torch.no_grad():
                hs = loaded.model(input_ids=ids, output_hidden_states=True).hidden_states
            rows.append(torch.stack([hs[1][0, -1], hs[2][0, -1]]))
        diffs.append(torch.stack(rows))
    expected = (diffs[1] - diffs[0]).mean(0)
    torch.testing.assert_close(
        Direction.load(folder / "finetune").vectors[:2], expected, atol=1e-4, rtol=1e-4
    )

    caches = _visible(root / "artifacts" / "cache")
    assert run_directions(config, (again := _console())) == 0
    assert "reusing" in again.file.getvalue()  # type: ignore[attr-defined]

    probes = ProbesConfig(model=model, adapter=str(adapter), n_boot=50, **COMMON)
    assert run_probes(probes, _console()) == 0
    assert _visible(root / "artifacts" / "cache") == caches  # every activation came from the caches
    (pfolder,) = [
        f for f in (root / "artifacts" / "probes").iterdir() if not f.name.startswith(".")
    ]
    auroc = pd.read_csv(pfolder / "probe_auroc.csv")
    assert list(auroc.columns) == [
        "probe",
        "site",
        "layer",
        "n",
        "auroc",
        "auroc_low",
        "auroc_high",
        "accuracy",
        "accuracy_low",
        "accuracy_high",
        "shuffled_auroc",
    ]
    assert set(auroc["probe"]) == {"sycophancy", "warm_vs_original"}
    warm = auroc[auroc["probe"] == "warm_vs_original"]
    assert (warm["auroc"] > 0.9).all() and (warm["shuffled_auroc"] < 0.8).all()
    pcos = pd.read_csv(pfolder / "probe_direction_cosines.csv")
    assert list(pcos.columns) == ["probe", "layer", "direction", "cosine"] and set(
        pcos["direction"]
    ) == set(names)

    traj = TrajectoryConfig(run="tiny-warm", model=model, per_task=3, batch_size=16)
    before = _visible(root / "artifacts" / "cache")
    assert run_trajectory(traj, _console()) == 0
    assert (
        len(_visible(root / "artifacts" / "cache") - before) == 1
    )  # only the epoch-1 cache is new
    (tfolder,) = [
        f for f in (root / "artifacts" / "trajectory").iterdir() if not f.name.startswith(".")
    ]
    table = pd.read_csv(tfolder / "trajectory.csv")
    assert list(table.columns) == ["epoch", "layer", "cosine_to_final", "shift"]
    assert sorted(table["epoch"].unique()) == [0.0, 1.0, 2.0]
    final = table[table["epoch"] == 2.0]
    np.testing.assert_allclose(final["cosine_to_final"], 1.0, atol=1e-6)
    assert (final["shift"] > 0).all() and (table[table["epoch"] == 0.0]["shift"] == 0).all()
    corr = pd.read_csv(tfolder / "trajectory_warmth.csv")
    assert (
        list(corr.columns) == ["layer", "measure", "n_epochs", "r"]
        and (corr["n_epochs"] == 3).all()
    )


def test_user_errors_are_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INTERP_ARTIFACTS", str(tmp_path))
    with pytest.raises(ConfigError, match="finetune needs --adapter"):
        DirectionsConfig(definitions=("finetune",))
    assert main(["directions", "--definitions", "warmth"]) == 2
    assert "unknown ['warmth']" in capsys.readouterr().out
    assert main(["trajectory", str(tmp_path / "nowhere")]) == 2
    assert main(["probes", "--sites", "resid"]) == 2


def test_cache_command_keeps_requested_sites_and_reuses_its_folder(setup, monkeypatch):
    from interp.cache import open_cache
    from interp.commands.cache import CacheConfig, run_cache
    from interp.sites import Site

    root, model, _run, adapter = setup
    monkeypatch.setenv("INTERP_ARTIFACTS", str(root / "cache-cmd"))
    config = CacheConfig(
        model=model,
        adapter=str(adapter),
        per_task=1,
        sites=("attn_out", "resid_post"),
        layers=(0, 2),
        positions=("last", "mean_user"),
        batch_size=4,
        shard_rows=8,
    )
    assert run_cache(config, _console()) == 0
    (folder,) = sorted(_visible(root / "cache-cmd" / "cache"))
    cache = open_cache(folder)
    assert len(cache.row_ids) == 4 * 2 * 3  # 4 tasks x 2 conditions x 3 templates
    assert cache.load(Site(2, "attn_out"), "mean_user").shape == (24, 1, 64)
    assert cache.manifest["request"]["model"]["adapter_hash"] is not None
    assert run_cache(config, _console()) == 0  # the same request lands in the same, finished folder
    assert sorted(_visible(root / "cache-cmd" / "cache")) == [folder]
    with pytest.raises(ConfigError, match="positions"):
        CacheConfig(positions=("middle",))
