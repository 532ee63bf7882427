"""``interp sae train | decompose | intervene``: a sparse-autoencoder view of the warmth direction.

- train: every-token residual activations (study prompts, the model's own replies, the reply
  triples, an optional text file) at the layer where the warmth directions are strongest ->
  a sae-lens TopK SAE + sae_quality.json (explained variance, spliced loss, dead latents);
- decompose: each direction in SAE latents (decoder cosine, attribution of the warm-minus-original
  difference, top examples) -> sae_decomposition.csv, latent_overlap.csv, latent_sets.json;
- intervene: ablate / clamp the top latents through the SAE (error added back) ->
  sae_interventions.csv.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from rich.console import Console
from rich.table import Table

from interp import paths
from interp.artifacts import (
    is_complete,
    result_folder,
    sha256_json,
    write_json_atomic,
    writing_result,
)
from interp.causal.arms import Arm
from interp.causal.inputs import study_prompts, warmth_scorer
from interp.causal.pair import load_pair
from interp.causal.verdict import measure_arms, verdict_table
from interp.config import ConfigError, option
from interp.data.split import split_record
from interp.directions import Direction, load_directions
from interp.errors import InputNotFoundError
from interp.hooks import get_backend
from interp.hooks.base import Backend
from interp.models import EMBEDDED, LoadOptions, load_model
from interp.persona import persona_direction
from interp.sae import activations as A
from interp.sae import sources
from interp.sae.activations import load_token_activations
from interp.sae.decomposition import decompose_directions
from interp.sae.intervene import latent_arms
from interp.sae.layer_choice import strongest_layer, warmth_directions
from interp.sae.load import folder_meta, load_sae, parse_spec, sae_site, to_site_device
from interp.sae.quality import reconstruction_stats, spliced_loss
from interp.sae.train import SaeTrainSpec, to_inference, train_sae
from interp.sites import Site
from interp.steer import residual_norms
from interp.warmth.pairs import load_split

log = logging.getLogger(__name__)

PRESETS: dict[str, dict[str, Any]] = {  # embedded: about 3-4 min on 2 cores; large: up to ~20 min
    "embedded": {
        "per_task": 3,
        "n_responses": 24,
        "max_total_tokens": 24_000,
        "d_sae": 2304,
        "k": 32,
        "n_samples": 240_000,
        "n_persona": 32,
    },
    "large": {
        "per_task": None,
        "n_responses": 160,
        "max_total_tokens": 160_000,
        "d_sae": 4608,
        "k": 32,
        "n_samples": 2_000_000,
        "n_persona": 144,
    },
}


@dataclass(frozen=True)
class SaeTrainConfig(LoadOptions):
    """Train a TopK (or JumpReLU) SAE with sae-lens on every-token residual activations."""

    preset: Literal["embedded", "large"] = option(
        "embedded", help="sizes (embedded: ~3-4 min on 2 cores; large: ~20 min)"
    )
    model: str = option(EMBEDDED, help="registry name, Hugging Face id or local folder", flag="-m")
    adapter: str | None = option(
        None, help="PEFT adapter on top of the model (the SAE reads that model)"
    )
    layer: int | None = option(
        None,
        help=(
            "layer whose resid_post the SAE reads (default: where the warmth directions are "
            "strongest)"
        ),
    )
    directions: tuple[str, ...] = option(
        (),
        help=(
            "Direction folders (from `interp directions`) to choose the layer; none: a persona "
            "direction from the reply triples"
        ),
    )
    text_file: str | None = option(
        None, help="a local UTF-8 text corpus to add (blank-line-separated paragraphs)"
    )
    architecture: Literal["topk", "jumprelu"] = option(
        "topk", help="SAE architecture (sae-lens training class)"
    )
    d_sae: int | None = option(None, help="number of latents (default from the preset)")
    k: int | None = option(None, help="active latents per token, TopK (default from the preset)")
    n_samples: int | None = option(
        None, help="training samples (tokens drawn, with repeats; default from the preset)"
    )
    max_total_tokens: int | None = option(
        None, help="at most this many distinct tokens of activations (default from the preset)"
    )
    held_out: float = option(
        0.1, help="fraction of rows kept out of training for the quality measures"
    )
    seed: int = option(0, help="seed of row selection, data order and initialisation")
    out: str | None = option(None, help="output folder (default: <artifacts>/sae/<config hash>)")

    def __post_init__(self) -> None:
        if not 0.0 < self.held_out < 0.5:
            raise ConfigError(f"held_out must be in (0, 0.5), found {self.held_out}")

    def resolved(self, key: str) -> Any:
        value = getattr(self, key, None)
        return PRESETS[self.preset][key] if value is None else value


def _held_out(row_id: str, fraction: float) -> bool:
    return int(sha256_json(["sae-held-out", row_id])[:8], 16) / 0xFFFFFFFF < fraction


def sae_layer_norms(backend: Backend, rows: list[A.TextRow]) -> dict[int, float]:
    """The typical residual norm per layer (:func:`interp.steer.residual_norms`) on the first
    12 warm triple rows, which the SAE's layer choice divides the directions' norms by."""
    convs = [r.conversation for r in rows if r.source == "triple:warm" and r.conversation][:12]
    return residual_norms(backend, convs, range(backend.n_layers))


def run_sae_train(config: SaeTrainConfig, console: Console | None = None) -> int:
    console = console or Console()
    out = result_folder("sae", config)
    if (out / "sae_quality.json").is_file():
        console.print(f"SAE exists in {out}; reusing it (delete the folder to retrain)")
        console.print(quality_table(json.loads((out / "sae_quality.json").read_text())))
        return 0
    # inputs are checked before the model loads
    if config.text_file is not None and not Path(config.text_file).is_file():
        raise ConfigError(f"text_file: {config.text_file} does not exist")
    directions = load_directions(config.directions)
    loaded = load_model(config.model, adapter=config.adapter, **config.load_kwargs())
    backend = get_backend(loaded, "torch")
    work = paths.artifact_dir("sae-work", out.name)  # resumable intermediate files
    split = load_split()
    prompts = sources.study_prompts(config.resolved("per_task"), seed=config.seed)
    rows = sources.prompt_rows(prompts) + sources.triple_rows()
    if config.text_file:
        rows += A.read_text_file(Path(config.text_file))
    chosen = [
        prompts[i]
        for i in torch.randperm(len(prompts), generator=torch.Generator().manual_seed(config.seed))[
            : config.resolved("n_responses")
        ].tolist()
    ]
    rows += sources.response_rows(backend, chosen, work / "responses.jsonl")
    rows = A.cap_rows(rows, loaded.tokenizer, config.resolved("max_total_tokens"), 256, config.seed)

    if not directions:
        console.print(
            "no --directions: deriving a persona direction (warm minus neutral replies) from the "
            "reply triples"
        )
        persona = persona_direction(
            backend, split.train[: config.resolved("n_persona")], range(backend.n_layers)
        )
        persona_folder = work / "persona"
        if not persona_folder.exists():
            persona.save(persona_folder)
        directions = [persona]
    norms = sae_layer_norms(backend, rows)
    best, rel = strongest_layer(warmth_directions(directions) or directions, norms)
    layer = config.layer if config.layer is not None else best
    site = Site(layer, "resid_post")
    console.print(
        f"SAE site {site} (warmth directions strongest at layer {best}, relative norm "
        f"{rel[best]:.3f}); {len(rows)} rows"
    )

    spec = A.token_spec(site)
    acts_dir = A.build_token_activations(
        backend, rows, spec, work / "activations", extra_meta={"stage": "sae-activations"}
    )
    tokens = A.load_token_activations(acts_dir)
    held = torch.tensor([_held_out(rid, config.held_out) for rid in tokens.row_ids])[tokens.row]
    train_acts, test_acts = tokens.acts[~held], tokens.acts[held]
    tspec = SaeTrainSpec(
        d_sae=config.resolved("d_sae"),
        k=config.resolved("k"),
        architecture=config.architecture,
        n_samples=config.resolved("n_samples"),
        seed=config.seed,
    )
    console.print(
        f"training {config.architecture} SAE d_sae={tspec.d_sae} k={tspec.k} on {len(train_acts)} "
        f"tokens ({tspec.n_samples} samples)"
    )
    trained, info = train_sae(
        train_acts,
        tspec,
        checkpoint_dir=work / "checkpoints",
        metadata={"hook_name": site.name, "model_name": loaded.name},
        device=loaded.device,  # the model's device: a GPU run trains the SAE there
    )
    held_rows = [r for r in rows if _held_out(r.id, config.held_out)]
    with writing_result(
        out,
        stage="sae-train",
        config=config,
        spec=tspec.to_json(),
        site=str(site),
        activations=str(acts_dir),
        n_tokens=int(tokens.acts.shape[0]),
        n_rows=len(rows),
        directions=[d.name for d in directions],
        direction_folders=list(config.directions) or [str(work / "persona")],
        **loaded.provenance(),
    ) as tmp:
        sae = to_inference(trained, tmp / "sae", loaded.device)
        quality = {
            "site": str(site),
            "layer_choice": {"chosen": layer, "strongest": best, "relative_norm": rel},
            "train": info,
            "held_out": reconstruction_stats(sae, test_acts),
            "train_tokens": reconstruction_stats(sae, train_acts),
            "spliced": spliced_loss(
                backend,
                sae,
                site,
                held_rows[:48],
                mean_act=train_acts.mean(0).to(loaded.device),
            ),
        }
        write_json_atomic(tmp / "sae_quality.json", quality)
    console.print(quality_table(quality))
    console.print(f"SAE and quality in {out}")
    return 0


def quality_table(q: dict[str, Any]) -> Table:
    table = Table(title=f"SAE quality at {q['site']} (held-out rows)")
    for col in ("measure", "value"):
        table.add_column(col)
    h, s = q["held_out"], q["spliced"]
    for name, value in (
        ("explained variance", f"{h['explained_variance']:.3f}"),
        ("L0", f"{h['l0']:.1f}"),
        ("dead latents", f"{h['dead_latents']} / {h['d_sae']}"),
        ("CE clean", f"{s['ce_clean']:.3f}"),
        ("CE spliced (increase)", f"{s['ce_sae']:.3f} (+{s['ce_increase']:.3f})"),
        ("CE spliced + error", f"{s['ce_sae_plus_error']:.4f}"),
        ("CE mean-ablated", f"{s['ce_mean_ablated']:.3f}"),
        ("loss recovered", f"{s['loss_recovered']:.3f}"),
    ):
        table.add_row(name, value)
    return table


@dataclass(frozen=True)
class SaeDecomposeConfig(LoadOptions):
    """Decompose warmth and sycophancy directions into SAE latents; overlap against nulls."""

    sae: str = option(
        help="an `interp sae train` folder, a sae-lens folder, or RELEASE:ID of a published SAE",
        positional=True,
    )
    directions: tuple[str, ...] = option(
        (), help="Direction folders (default: those the SAE's layer was chosen from)"
    )
    model: str = option(
        EMBEDDED, help="model whose warm-minus-original difference is attributed", flag="-m"
    )
    adapter: str | None = option(
        None, help="warm adapter (embedded-warm or a folder); none: a warm system prompt stands in"
    )
    layer: int | None = option(None, help="override the SAE's layer")
    tokens: str | None = option(
        None,
        help="token-activation folder for top examples (default: the SAE's training activations)",
    )
    top_k: int = option(10, help="latents per direction")
    n_examples: int = option(3, help="top-activating examples per latent")
    n_pairs: int = option(
        24, help="held-out reply triples whose neutral replies are read by both models"
    )
    seed: int = option(0, help="seed of the nulls")
    out: str | None = option(
        None, help="output folder (default: <artifacts>/sae-decompose/<config hash>)"
    )

    def __post_init__(self) -> None:
        if self.top_k < 1 or self.n_pairs < 2:
            raise ConfigError("top_k must be >= 1 and n_pairs >= 2")


def _direction_list(config: SaeDecomposeConfig) -> list[Direction]:
    folders: list[str] = list(config.directions)
    where = parse_spec(config.sae)
    if not folders and isinstance(where, Path):
        folders = folder_meta(where).get("direction_folders", [])
    if not folders:
        raise ConfigError(
            "no directions: pass --directions (Direction folders from `interp directions`)"
        )
    return load_directions(folders)


def run_sae_decompose(config: SaeDecomposeConfig, console: Console | None = None) -> int:
    """Write ``sae_decomposition.csv``, ``latent_overlap.csv`` and ``latent_sets.json``."""
    console = console or Console()
    out = result_folder("sae-decompose", config)
    if is_complete(out, ("sae_decomposition.csv", "latent_sets.json")):
        console.print(f"decomposition exists in {out}; reusing it")
        return 0
    directions = _direction_list(config)
    where = parse_spec(config.sae)
    tok_folder = config.tokens or (
        folder_meta(Path(config.sae)).get("activations") if isinstance(where, Path) else None
    )
    if tok_folder and not Path(tok_folder).is_dir():
        raise InputNotFoundError(f"tokens: {tok_folder} is not a folder of token activations")
    sae, source = load_sae(config.sae)
    site = sae_site(sae, config.layer)
    pair = load_pair(
        config.model, config.adapter, stand_in_if_missing=False, **config.load_kwargs()
    )
    sae = to_site_device(sae, pair.original.hf_model, site)
    tokens = load_token_activations(Path(tok_folder)) if tok_folder else None
    table, overlap, sets, meta = decompose_directions(
        sae,
        site,
        directions,
        pair.backend("original"),
        pair.backend("warm"),
        pair.warm_system,
        load_split().held_out[: config.n_pairs],
        tokens=tokens,
        top_k=config.top_k,
        n_examples=config.n_examples,
        seed=config.seed,
    )
    with writing_result(
        out,
        stage="sae-decompose",
        config=config,
        sae_source=source,
        examples_from=tok_folder,
        warm=pair.warm_source,
        warm_system=pair.warm_system,
        **meta,
        **pair.original.provenance(),
    ) as tmp:
        table.to_csv(tmp / "sae_decomposition.csv", index=False)
        overlap.to_csv(tmp / "latent_overlap.csv", index=False)
        write_json_atomic(
            tmp / "latent_sets.json", {"sae": config.sae, "site": str(site), "sets": sets}
        )
    t = Table(
        title=(
            "Top SAE latents per direction (cosine with the decoder vector; attribution of warm - "
            "original)"
        )
    )
    for col in ("direction", "rank", "latent", "cosine", "attribution", "top example"):
        t.add_column(col)
    for r in table[table["rank"] <= 5].itertuples():
        t.add_row(
            str(r.direction),
            str(r.rank),
            str(r.latent),
            f"{r.cosine:.3f}",
            f"{r.attribution:+.4f}",
            str(r.top_examples).split(" | ")[0][:60],
        )
    console.print(t)
    console.print(overlap.to_string(index=False))
    console.print(f"decomposition in {out}")
    return 0


@dataclass(frozen=True)
class SaeInterveneConfig(LoadOptions):
    """Ablate / clamp the top warmth latents through the SAE; error, sycophancy and warmth per
    condition."""

    decomposition: str = option(help="an `interp sae decompose` output folder", positional=True)
    model: str = option(EMBEDDED, help="registry name, Hugging Face id or local folder", flag="-m")
    adapter: str | None = option(
        None, help="warm adapter; none: a warm system prompt stands in for the warm model"
    )
    per_task: int = option(4, help="items per task (x neutral/sad x no-belief/incorrect/doubt)")
    n_random: int = option(
        3, help="random-latent ablation replicates (k latents each, outside the top sets)"
    )
    n_warmth: int = option(8, help="held-out triple requests answered (greedy) to measure warmth")
    max_new_tokens: int = option(32, help="tokens per warmth reply")
    clamp_scale: float = option(
        1.0,
        help="clamp targets = this x each latent's 99th-percentile activation on the warm model",
    )
    seed: int = option(0, help="seed of random latents and bootstrap")
    n_boot: int = option(2000, help="bootstrap resamples")
    out: str | None = option(
        None, help="output folder (default: <artifacts>/sae-intervene/<config hash>)"
    )


def run_sae_intervene(config: SaeInterveneConfig, console: Console | None = None) -> int:
    """Write ``sae_interventions.csv``: the latent edits as verdict arms, one verdict table."""
    console = console or Console()
    out = result_folder("sae-intervene", config)
    if is_complete(out, ("sae_interventions.csv",)):
        console.print(f"interventions exist in {out}; reusing them")
        return 0
    sets_file = Path(config.decomposition, "latent_sets.json")
    if not sets_file.is_file():
        raise InputNotFoundError(
            f"decomposition: {config.decomposition} has no latent_sets.json "
            "(run `interp sae decompose`)"
        )
    spec = json.loads(sets_file.read_text())
    sae, source = load_sae(spec["sae"])
    site = Site.parse(spec["site"])
    pair = load_pair(
        config.model, config.adapter, stand_in_if_missing=False, **config.load_kwargs()
    )
    sae = to_site_device(sae, pair.original.hf_model, site)
    original = Arm("original", "none", pair.backend("original"), None)
    warm = Arm("warm", "none", pair.backend("warm"), pair.warm_system)
    arms = latent_arms(
        sae,
        site,
        spec["sets"],
        original,
        warm,
        clamp_scale=config.clamp_scale,
        n_random=config.n_random,
        seed=config.seed,
    )
    prompts, _ = study_prompts(
        config.per_task, config.seed, templates=("no_belief", "incorrect", "doubt")
    )
    requests = [(t.id, t.request) for t in load_split().held_out[: config.n_warmth]]
    per_prompt, warmth = measure_arms(
        arms,
        prompts,
        requests,
        warmth_scorer(config.seed),
        max_new_tokens=config.max_new_tokens,
    )
    table = verdict_table(per_prompt, warmth, n_boot=config.n_boot, seed=config.seed)
    with writing_result(
        out,
        stage="sae-intervene",
        config=config,
        sae_source=source,
        site=str(site),
        n_prompts=len(prompts),
        split=split_record("evaluation", [p.item_id for p in prompts]),
        n_warmth_requests=len(requests),
        arms=[f"{a.model}/{a.label}" for a in arms],
        warm=pair.warm_source,
        warm_system=pair.warm_system,
        **pair.original.provenance(),
    ) as tmp:
        table.to_csv(tmp / "sae_interventions.csv", index=False)
        per_prompt.to_csv(tmp / "per_prompt.csv", index=False)
    t = Table(
        title="Latent interventions (diff vs the unedited warm model, 95% CI by item bootstrap)"
    )
    for col in (
        "model",
        "intervention",
        "condition",
        "measure",
        "mean [CI]",
        "diff vs warm [CI]",
        "p",
    ):
        t.add_column(col)
    for r in table.itertuples():
        diff = (
            ""
            if r.diff_vs_warm != r.diff_vs_warm
            else f"{r.diff_vs_warm:+.3f} [{r.diff_low:+.3f}, {r.diff_high:+.3f}]"
        )
        t.add_row(
            r.model,
            r.intervention,
            r.condition,
            r.measure,
            f"{r.mean:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]",
            diff,
            "" if r.p_value != r.p_value else f"{r.p_value:.3g}",
        )
    console.print(t)
    console.print(f"interventions in {out}")
    return 0
