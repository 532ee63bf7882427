"""Token activations on disk, decomposition, overlap nulls, latent evaluation and SAE loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from interp.artifacts import ArtifactExistsError
from interp.chat import Message
from interp.config import ConfigError
from interp.hooks import get_backend
from interp.sae.activations import (
    TextRow,
    build_token_activations,
    encode_row,
    load_token_activations,
    read_rows,
    token_spec,
)
from interp.sae.decompose import (
    decoder_cosines,
    latent_attribution,
    mean_features,
    overlap_nulls,
    top_examples,
    top_latents,
)
from interp.sae.load import check_published, load_sae, parse_spec, sae_site
from interp.sites import Site

ROWS = [
    TextRow(
        "a",
        "triple:warm",
        conversation=(
            Message("user", "hello there"),
            Message("assistant", "hi, so glad you asked"),
        ),
    ),
    TextRow("b", "prompt", conversation=(Message("user", "what is two plus two?"),)),
    TextRow("c", "text", text="plain corpus text with several words in it"),
]


def test_token_activations_match_a_plain_read_and_resume(tiny_llama, tmp_path):
    backend = get_backend(tiny_llama, "torch")
    site = Site(1, "resid_post")
    spec = token_spec(site, batch_size=1, shard_rows=1)
    folder = build_token_activations(backend, ROWS, spec, tmp_path / "acts", show_progress=False)
    tokens = load_token_activations(folder)
    tok = tiny_llama.tokenizer
    for i, row in enumerate(ROWS):
        ids, keep = encode_row(tok, row, 256)
        with torch.no_grad(), backend.hooked(read=[site]) as rec:
            backend.forward(torch.tensor([ids]), None)
        mine = tokens.acts[tokens.row == i]
        torch.testing.assert_close(mine, rec[site][0, keep:], atol=1e-5, rtol=1e-5)
        assert tokens.token_ids[tokens.row == i].tolist() == ids[keep:]
    assert tokens.row_sources == ["triple:warm", "prompt", "text"]
    # a kept token never belongs to the default system prompt
    assert len(tokens.acts) < sum(len(encode_row(tok, r, 256)[0]) for r in ROWS)
    # resume: drop the last shard, rebuild, same bytes
    manifest = json.loads((folder / "manifest.json").read_text())
    before = (folder / "shard-00002.safetensors").read_bytes()
    manifest["shards"] = manifest["shards"][:2]
    manifest["status"] = "in_progress"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "shard-00002.safetensors").unlink()
    build_token_activations(backend, ROWS, spec, folder, show_progress=False)
    assert (folder / "shard-00002.safetensors").read_bytes() == before
    with pytest.raises(ArtifactExistsError, match="different request"):
        build_token_activations(backend, ROWS[:2], spec, folder, show_progress=False)
    # batched in memory (right padding) gives the same activations as the stored shards
    torch.testing.assert_close(
        read_rows(backend, ROWS, site, batch_size=3), tokens.acts, atol=1e-5, rtol=1e-5
    )


class _PlantedSae(torch.nn.Module):
    """A ReLU dictionary with known decoder rows (the encode/decode surface the code uses)."""

    def __init__(self, w_dec: torch.Tensor):
        super().__init__()
        self.W_dec = torch.nn.Parameter(w_dec.clone())
        self.cfg = type(
            "Cfg",
            (),
            {
                "d_sae": w_dec.shape[0],
                "metadata": type("M", (), {"hook_name": "blocks.4.hook_resid_post"})(),
            },
        )()

    def encode(self, x):
        return torch.relu(x @ self.W_dec.T)

    def decode(self, f):
        return f @ self.W_dec


def _orthonormal(n: int, d: int, seed: int = 0) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed)))
    return q[:n]


def test_decomposition_finds_the_planted_latent_and_attribution_sums():
    w = _orthonormal(12, 16)
    sae = _PlantedSae(w)
    direction = 3.0 * w[5] + 0.2 * w[2]
    cos = decoder_cosines(sae, direction)
    assert top_latents(cos, 2) == [5, 2]
    assert float(cos[5]) == pytest.approx(3.0 / np.hypot(3.0, 0.2), abs=1e-6)
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(40, 16, generator=g) + w[5], torch.rand(30, 16, generator=g)
    attr = latent_attribution(sae, a, b, direction)
    u = direction / direction.norm()
    recon_gap = (sae.decode(sae.encode(a)).mean(0) - sae.decode(sae.encode(b)).mean(0)) @ u
    assert float(attr.sum()) == pytest.approx(float(recon_gap.detach()), rel=1e-4)
    assert int(torch.argmax(attr)) == 5
    torch.testing.assert_close(
        mean_features(sae, a, batch_size=7), sae.encode(a).mean(0), atol=1e-5, rtol=1e-5
    )


def test_overlap_nulls_flag_a_planted_overlap():
    sae = _PlantedSae(torch.randn(200, 16, generator=torch.Generator().manual_seed(0)))
    same = overlap_nulls(sae, list(range(10)), list(range(10)), n=500)
    assert {r["null"] for r in same} == {"random-latents", "random-direction"}
    for r in same:
        assert r["overlap"] == 10 and r["null_high"] < 10 and r["p_value"] < 0.01
    disjoint = overlap_nulls(sae, list(range(10)), list(range(100, 110)), n=500)
    assert all(r["overlap"] == 0 and r["p_value"] == 1.0 for r in disjoint)
    uniform = next(r for r in disjoint if r["null"] == "random-latents")
    assert uniform["null_mean"] == pytest.approx(10 * 10 / 200, abs=0.15)


def test_top_examples_show_the_strongest_token(tiny_llama, tmp_path):
    backend = get_backend(tiny_llama, "torch")
    folder = build_token_activations(
        backend,
        ROWS,
        token_spec(Site(0, "resid_post"), batch_size=1, shard_rows=1),
        tmp_path / "t",
        show_progress=False,
    )
    tokens = load_token_activations(folder)
    target = tokens.acts[3] / tokens.acts[3].norm()
    sae = _PlantedSae(torch.stack([target, -target]))
    ex = top_examples(sae, tokens, [0], tiny_llama.tokenizer, n=2)
    at = tiny_llama.tokenizer.decode(tokens.token_ids[3:4].tolist())
    assert (
        ex[0][0].split(" (")[0].endswith(f"[{at}]".replace(" ", ""))
        or f"[{at.strip()}]" in ex[0][0]
    )
    assert len(ex[0]) <= 2


def test_latent_edits_are_verdict_arms_with_one_table(tiny_llama):
    """SAE latent edits run as ordinary verdict arms: replicates pool per prompt, one table."""
    from interp.causal.arms import Arm
    from interp.causal.inputs import study_prompts
    from interp.causal.verdict import VERDICT_COLUMNS, measure_arms, verdict_table
    from interp.hooks import get_backend
    from interp.sae.intervene import latent_arms
    from interp.sites import Site

    d = tiny_llama.d_model
    sae = _PlantedSae(torch.eye(d)[:6])
    backend = get_backend(tiny_llama, "torch")
    sets = {
        "persona": {"latents": [0, 1], "clamp_values": [1.0, 2.0], "sycophancy": False},
        "sycophancy": {"latents": [2], "clamp_values": [0.5], "sycophancy": True},
    }
    arms = latent_arms(
        sae,
        Site(1, "resid_post"),
        sets,
        Arm("original", "none", backend),
        Arm("warm", "none", backend, "Be warm."),
        clamp_scale=1.0,
        n_random=2,
        seed=0,
    )
    labels = [a.label for a in arms]
    assert labels == [
        "none",
        "none",
        "sae-ablate:top2-persona",
        "sae-clamp:top2-persona",
        "sae-ablate:top1-sycophancy",
        "ablate:random-latents",
    ]
    assert len(arms[-1].edit_sets) == 2
    prompts, _ = study_prompts(1, templates=("no_belief", "incorrect", "doubt"))
    per_prompt, warmth = measure_arms(
        arms,
        prompts,
        [("r1", "Hi"), ("r2", "Help")],
        lambda replies: np.zeros(len(replies)),
        max_new_tokens=2,
    )
    assert per_prompt.groupby(["model", "intervention"]).size().nunique() == 1  # pooled per prompt
    table = verdict_table(per_prompt, warmth, n_boot=50)
    assert tuple(table.columns) == VERDICT_COLUMNS
    base = table[(table.model == "warm") & (table.intervention == "none")]
    assert base["diff_vs_warm"].isna().all() and base["p_value"].isna().all()
    assert set(table["measure"]) == {"error", "agrees_with_user", "warmth"}


def test_published_sae_errors_name_the_problem(tmp_path):
    with pytest.raises(
        ConfigError, match=r"not in sae-lens' pretrained directory.*llama-3\.1-8b-instruct-andyrdt"
    ):
        check_published("llama-3.1-8b-instruct-andyrd", "resid_post_layer_19_trainer_1")
    with pytest.raises(ConfigError, match=r"not in release.*resid_post_layer_19_trainer_1"):
        check_published("llama-3.1-8b-instruct-andyrdt", "resid_post_layer_19_trainer_9")
    entry = check_published("goodfire-llama-3.1-8b-instruct", "layer_19")
    assert entry["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert parse_spec("goodfire-llama-3.1-8b-instruct:layer_19") == (
        "goodfire-llama-3.1-8b-instruct",
        "layer_19",
    )
    with pytest.raises(ConfigError, match="neither an existing folder"):
        parse_spec(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"no sae-lens cfg\.json"):
        load_sae(tmp_path)


def test_sae_site_from_hook_names():
    sae = _PlantedSae(torch.eye(4))
    assert sae_site(sae) == Site(4, "resid_post")
    assert sae_site(sae, layer=7) == Site(7, "resid_post")
    sae.cfg.metadata.hook_name = "model.layers.19"
    assert sae_site(sae) == Site(19, "resid_post")
    sae.cfg.metadata.hook_name = "unknown"
    with pytest.raises(ConfigError, match="pass --layer"):
        sae_site(sae)
