"""The two SAE experiments end to end (what ``interp sae decompose`` and ``interp sae intervene``
run): reading the models, decomposing each direction, and evaluating the latent interventions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from interp.chat import Message
from interp.config import ConfigError
from interp.data.build import DataBuildConfig, build_prompt_list
from interp.directions import Direction, DirectionError
from interp.hooks.base import Backend
from interp.sae.activations import TextRow, encode_row, load_token_activations, read_kept
from interp.sae.decompose import (
    decoder_cosines,
    decomposition_rows,
    latent_attribution,
    overlap_nulls,
    top_examples,
    top_latents,
)
from interp.sae.intervene import LatentEdit, encode_decode, random_latents, sae_edit
from interp.sae.latent_eval import Arm, intervention_table, run_arm
from interp.sae.layer_choice import is_sycophancy, load_directions
from interp.sae.load import folder_meta, load_sae, parse_spec, sae_site
from interp.sites import Site
from interp.warmth.pairs import load_split


def read_rows(backend: Backend, rows: list[TextRow], site: Site, system: str | None, batch_size: int = 8) -> torch.Tensor:
    """Kept-token activations of ``rows`` at ``site`` (a system message prepended when given)."""
    tok = backend.loaded.tokenizer
    out = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        if system is not None:
            chunk = [TextRow(r.id, r.source, conversation=(Message("system", system), *(r.conversation or ()))) for r in chunk]
        encoded = [encode_row(tok, r, 256) for r in chunk]
        out += read_kept(backend, encoded, site, tok.pad_token_id)
    return torch.cat(out)


def _directions(config: Any) -> list[Direction]:
    folders = list(config.directions)
    where = parse_spec(config.sae)
    if not folders and isinstance(where, Path):
        folders = folder_meta(where).get("direction_folders", [])
    if not folders:
        raise ConfigError("no directions: pass --directions (Direction folders from `interp directions`)")
    return load_directions(folders)


def decompose_all(config: Any, original: Backend, warm: Backend, system: str | None) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any], dict[str, Any]]:
    """Decomposition table, overlap table, latent sets (with clamp values) and meta fields."""
    sae, source = load_sae(config.sae)
    site = sae_site(sae, config.layer)
    directions = _directions(config)
    held = load_split().held_out[: config.n_pairs]
    rows = [TextRow(f"{t.id}", "triple:neutral", conversation=(Message("user", t.request), Message("assistant", t.neutral))) for t in held]
    acts_orig = read_rows(original, rows, site, None)
    acts_warm = read_rows(warm, rows, site, system)
    tokens = None
    tok_folder = config.tokens or (folder_meta(Path(config.sae)).get("activations") if isinstance(parse_spec(config.sae), Path) else None)
    if tok_folder:
        tokens = load_token_activations(Path(tok_folder))
    frames: list[pd.DataFrame] = []
    sets: dict[str, dict[str, Any]] = {}
    with torch.no_grad():
        warm_feats, _ = encode_decode(sae, acts_warm)
    for d in directions:
        try:
            v = d.at(site.layer)
        except DirectionError as exc:
            raise ConfigError(f"direction {d.name}: {exc}") from None
        cos = decoder_cosines(sae, v)
        attr = latent_attribution(sae, acts_warm, acts_orig, v)
        latents = top_latents(cos, config.top_k)
        examples = top_examples(sae, tokens, latents, original.loaded.tokenizer, n=config.n_examples) if tokens is not None else {}
        frames.append(decomposition_rows(d.name, cos, attr, latents, examples))
        clamp = [float(torch.quantile(warm_feats[:, i].float(), 0.99)) for i in latents]
        sets[d.name] = {"latents": latents, "clamp_values": clamp, "sycophancy": is_sycophancy(d)}
    overlap = []
    names = list(sets)
    for a in names:
        for b in names:
            if not sets[a]["sycophancy"] and sets[b]["sycophancy"]:
                for row in overlap_nulls(sae, sets[a]["latents"], sets[b]["latents"], seed=config.seed):
                    overlap.append({"a": a, "b": b, **row})
    overlap_df = pd.DataFrame(overlap, columns=["a", "b", "k", "overlap", "null", "null_mean", "null_low", "null_high", "p_value"])
    meta = {"sae_source": source, "site": str(site), "directions": [d.name for d in directions],
            "n_tokens_attribution": int(acts_orig.shape[0]), "examples_from": tok_folder}
    return pd.concat(frames, ignore_index=True), overlap_df, {"sae": config.sae, "site": str(site), "sets": sets}, meta


def intervene_all(config: Any, original: Backend, warm: Backend, system: str | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every arm of the latent-intervention experiment and its tidy table."""
    import json

    from interp.warmth.report import WarmthInstruments, score_responses

    spec = json.loads(Path(config.decomposition, "latent_sets.json").read_text())
    sae, source = load_sae(spec["sae"])
    site = Site.parse(spec["site"])
    sets = spec["sets"]
    prompts, _ = build_prompt_list(DataBuildConfig(conditions=("unmodified", "emotion:sad"), templates=("no_belief", "incorrect", "doubt"),
                                                   per_task=config.per_task, seed=config.seed))
    requests = [(t.id, t.request) for t in load_split().held_out[: config.n_warmth]]
    instruments = WarmthInstruments.load(embedding=True, seed=config.seed)

    def warmth(texts: list[str]) -> np.ndarray:
        scores = score_responses({str(i): t for i, t in enumerate(texts)}, instruments, which=["embedding"])
        return scores["score"].to_numpy(dtype=float)

    arms = [Arm("warm", "none", warm, {}, system), Arm("original", "none", original, {}, None)]
    k = max(len(s["latents"]) for s in sets.values())
    for name, s in sets.items():
        arms.append(Arm("warm", f"sae-ablate:top{len(s['latents'])}-{name}", warm, {site: sae_edit(sae, LatentEdit("ablate", tuple(s["latents"])))}, system))
        if not s["sycophancy"]:
            values = tuple(config.clamp_scale * v for v in s["clamp_values"])
            arms.append(Arm("original", f"sae-clamp:top{len(s['latents'])}-{name}", original,
                            {site: sae_edit(sae, LatentEdit("clamp", tuple(s["latents"]), values))}, None))
    used = sorted({i for s in sets.values() for i in s["latents"]})
    for r in range(config.n_random):
        latents = random_latents(int(sae.cfg.d_sae), k, used, seed=config.seed + r)
        arms.append(Arm("warm", "ablate:random-latents", warm, {site: sae_edit(sae, LatentEdit("ablate", latents))}, system, replicate=r))
    obs = pd.concat([run_arm(a, prompts, requests, warmth, max_new_tokens=config.max_new_tokens) for a in arms], ignore_index=True)
    meta = {"sae_source": source, "site": str(site), "n_prompts": len(prompts), "n_warmth_requests": len(requests),
            "arms": [f"{a.model}/{a.intervention}/{a.replicate}" for a in arms], "k": k}
    return intervention_table(obs, seed=config.seed, n_boot=config.n_boot), meta
