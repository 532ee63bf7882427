"""`interp sae train | decompose | intervene` end to end on a tiny random model."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from interp.causal.verdict import VERDICT_COLUMNS as INTERVENTION_COLUMNS
from interp.config import ConfigError
from interp.errors import InputNotFoundError


def test_sae_commands_end_to_end(tmp_path, monkeypatch):
    from interp.commands import sae as command
    from interp.tiny_models import tiny_model

    monkeypatch.setenv("INTERP_ARTIFACTS", str(tmp_path / "artifacts"))
    model = tiny_model("llama")
    monkeypatch.setattr(command, "load_model", lambda *a, **k: model)
    monkeypatch.setattr("interp.causal.pair.load_model", lambda *a, **k: model)
    monkeypatch.setitem(
        command.PRESETS,
        "tiny",
        {
            "per_task": 1,
            "n_responses": 4,
            "max_total_tokens": 2500,
            "d_sae": 64,
            "k": 4,
            "n_samples": 4096,
            "n_persona": 6,
        },
    )
    train = command.SaeTrainConfig(preset="tiny", out=str(tmp_path / "sae"))  # type: ignore[arg-type]
    assert command.run_sae_train(train) == 0
    quality = json.loads((tmp_path / "sae" / "sae_quality.json").read_text())
    assert quality["spliced"]["ce_sae_plus_error"] == pytest.approx(
        quality["spliced"]["ce_clean"], abs=1e-4
    )
    assert 0 <= quality["held_out"]["dead_fraction"] <= 1 and quality["held_out"]["l0"] <= 4 + 1e-6
    assert (tmp_path / "sae" / "meta.json").is_file() and (
        tmp_path / "sae" / "sae" / "cfg.json"
    ).is_file()
    assert command.run_sae_train(train) == 0  # reused, not retrained

    dec = command.SaeDecomposeConfig(
        sae=str(tmp_path / "sae"), top_k=3, n_examples=2, n_pairs=3, out=str(tmp_path / "dec")
    )
    assert command.run_sae_decompose(dec) == 0
    table = pd.read_csv(tmp_path / "dec" / "sae_decomposition.csv")
    assert list(table.columns) == [
        "direction",
        "rank",
        "latent",
        "cosine",
        "attribution",
        "top_examples",
    ]
    assert table["direction"].unique().tolist() == ["persona"] and table["rank"].tolist() == [
        1,
        2,
        3,
    ]
    assert table["cosine"].is_monotonic_decreasing

    run = command.SaeInterveneConfig(
        decomposition=str(tmp_path / "dec"),
        per_task=1,
        n_random=1,
        n_warmth=2,
        max_new_tokens=3,
        n_boot=50,
        out=str(tmp_path / "int"),
    )
    assert command.run_sae_intervene(run) == 0
    result = pd.read_csv(tmp_path / "int" / "sae_interventions.csv")
    assert tuple(result.columns) == INTERVENTION_COLUMNS
    assert {
        "none",
        "sae-ablate:top3-persona",
        "sae-clamp:top3-persona",
        "ablate:random-latents",
    } <= set(result["intervention"])
    assert set(result["measure"]) == {"error", "agrees_with_user", "warmth"}
    meta = json.loads((tmp_path / "int" / "meta.json").read_text())
    assert meta["warm"].startswith("system prompt") and meta["warm_system"]


def test_configs_reject_bad_input(tmp_path):
    from interp.commands import sae as command

    with pytest.raises(ConfigError, match="held_out"):
        command.SaeTrainConfig(held_out=0.9)
    missing = command.SaeTrainConfig(text_file=str(tmp_path / "nope.txt"), out=str(tmp_path / "o"))
    with pytest.raises(ConfigError, match="text_file"):  # in the runner, before the model loads
        command.run_sae_train(missing)
    with pytest.raises(InputNotFoundError, match=r"latent_sets\.json"):
        command.run_sae_intervene(
            command.SaeInterveneConfig(decomposition=str(tmp_path), out=str(tmp_path / "o2"))
        )
