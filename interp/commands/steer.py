"""``interp steer`` (one prompt, several alphas, side by side), ``interp sweep``, ``interp ablate``
(the verdict experiment) and ``interp patch`` (activation patching), writing tidy tables.

Each command parses its config, checks its inputs before loading a model, calls the causal
layer (:mod:`interp.causal`) and writes one result folder (reused when it is complete).
Directions are named explicitly (``--directions``); quick fallback directions are derived only
with ``--fallback-directions``, and the result's meta.json says so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
from rich.console import Console
from rich.table import Table

from interp import paths
from interp.artifacts import is_complete, result_folder, sha256_json, writing_result
from interp.causal.arms import Arm, greedy_replies
from interp.causal.inputs import (
    check_direction_folders,
    named_directions,
    norms_for,
    study_prompts,
    triples_split,
    warmth_scorer,
)
from interp.causal.pair import ModelPair, load_pair
from interp.causal.patching import PatchArm, patch_both_ways
from interp.causal.sweep import SWEEP_COLUMNS, steering_sweep
from interp.causal.verdict import direction_arms, measure_arms, verdict_sentence, verdict_table
from interp.config import ConfigError, option
from interp.data.prompt_sets import Prompt
from interp.data.split import split_record
from interp.definitions.fallback import FALLBACK_NOTE, fallback_directions
from interp.directions import Direction
from interp.errors import InputNotFoundError
from interp.hooks import get_backend
from interp.models import EMBEDDED, LoadOptions, load_model
from interp.steer import Intervention, steered

log = logging.getLogger(__name__)


def _print_table(console: Console, df: pd.DataFrame, title: str, cols: list[str]) -> None:
    table = Table(title=title)
    for c in cols:
        table.add_column(c)
    for row in df[cols].itertuples(index=False):
        table.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row])
    console.print(table)


# ----------------------------------------------------------------------------- interp steer


@dataclass(frozen=True)
class SteerConfig(LoadOptions):
    """Steer one prompt with a direction at several alphas and show the replies side by side."""

    prompt: str = option(help="the user message", positional=True)
    direction: str = option(help="a Direction folder (its vectors file and meta.json)")
    layer: int = option(help="layer whose resid_post is steered")
    alphas: tuple[float, ...] = option(
        (-0.5, -0.25, 0.0, 0.25, 0.5),
        help="alphas in units of the typical residual norm at the layer (the sweep finds the "
        "model intact within about +-0.5; beyond that replies break down)",
    )
    op: Literal["add", "ablate", "ablate_add"] = option(
        "add", help="operator: add, ablate, ablate_add"
    )
    positions: Literal["prompt", "generated", "all"] = option(
        "all", help="prompt, generated or all"
    )
    model: str = option(EMBEDDED, help="model", flag="-m")
    adapter: str | None = option(None, help="LoRA adapter folder or run name")
    system: str | None = option(None, help="system prompt")
    max_new_tokens: int = option(48, help="tokens per reply (greedy)")


def run_steer(config: SteerConfig, console: Console | None = None) -> int:
    """Print the replies to one prompt at each alpha."""
    console = console or Console()
    folder = Path(config.direction)
    if not (folder / paths.META_FILE).is_file() or not (folder / paths.VECTORS_FILE).is_file():
        raise InputNotFoundError(
            f"direction: {folder} is not a Direction folder (expected {paths.META_FILE} and "
            f"{paths.VECTORS_FILE} in it; `interp directions` writes them)"
        )
    direction = Direction.load(folder)
    if config.layer not in direction.layers:
        raise ConfigError(
            f"layer: direction {direction.name!r} has layers {list(direction.layers)}, "
            f"not {config.layer}"
        )
    loaded = load_model(config.model, adapter=config.adapter, **config.load_kwargs())
    backend = get_backend(loaded, "torch")
    norms = norms_for(backend, triples_split()[0], [config.layer])
    table = Table(
        title=f"{direction.name} at layer {config.layer} (residual norm "
        f"{norms[config.layer]:.1f}), {config.op}, positions {config.positions}"
    )
    table.add_column("alpha")
    table.add_column("reply")
    alphas = (0.0,) if config.op == "ablate" else config.alphas
    for alpha in alphas:
        iv = Intervention(
            config.op, direction, (config.layer,), alpha=alpha, positions=config.positions
        )
        with steered(backend, [iv], norms, phase="generate"):
            reply = greedy_replies(backend, [config.prompt], config.system, config.max_new_tokens)[
                0
            ]
        table.add_row(f"{alpha:g}", reply)
    console.print(table)
    return 0


# ----------------------------------------------------------------------------- shared options


@dataclass(frozen=True)
class CausalConfig(LoadOptions):
    """Options shared by the causal commands (the model loads once: see
    :func:`interp.causal.pair.load_pair`)."""

    model: str = option(
        EMBEDDED, help="base (original) model: registry name, HF id or folder", flag="-m"
    )
    warm: str = option(
        "embedded-warm",
        help=(
            "warm model: a LoRA adapter folder or fine-tuning run name; if it cannot be found the "
            "warm system prompt stands in (recorded in meta.json)"
        ),
    )
    directions: tuple[str, ...] = option(
        (),
        help=(
            "Direction folders, or an `interp directions` run folder holding them (required "
            "unless --fallback-directions)"
        ),
    )
    fallback_directions: bool = option(
        False,
        help=(
            "with no --directions: derive quick persona and sycophancy directions on the original "
            "model (saved, and named in meta.json)"
        ),
    )
    warmth_names: tuple[str, ...] = option(
        ("persona", "finetune"), help="direction name prefixes that count as warmth directions"
    )
    sycophancy_name: str = option("sycophancy", help="name prefix of the sycophancy direction")
    per_task: int = option(4, help="evaluation items per task (the embedded preset: 4 x 4 tasks)")
    n_random: int = option(10, help="seeded random directions for the null (>= 10)")
    n_requests: int = option(8, help="held-out requests for warmth (greedy replies)")
    max_new_tokens: int = option(32, help="tokens per warmth reply")
    batch_size: int = option(16, help="rows per forward batch")
    seed: int = option(0, help="seed of random directions and bootstraps")
    n_boot: int = option(1000, help="bootstrap resamples")
    out: str | None = option(
        None, help="output folder (default: <artifacts>/<stage>/<config hash>)"
    )

    def __post_init__(self) -> None:
        if self.n_random < 10:
            raise ConfigError(
                "n_random must be >= 10 (the null needs at least 10 random directions), found "
                f"{self.n_random}"
            )
        if self.per_task < 2 or self.n_requests < 2 or self.batch_size < 1:
            raise ConfigError("per_task and n_requests must be >= 2, batch_size >= 1")


def _check_causal_inputs(config: CausalConfig) -> None:
    if config.directions:
        check_direction_folders("directions", config.directions)
    elif not config.fallback_directions:
        raise ConfigError(
            "directions: name the Direction folders (or an `interp directions` run) "
            "with --directions, or pass --fallback-directions to derive quick ones"
        )


def _directions(
    config: CausalConfig,
    pair: ModelPair,
    layers: Sequence[int],
    direction_prompts: Sequence[Prompt],
) -> tuple[list[Direction], str]:
    """The named directions (warmth and sycophancy prefixes), or the fallback when asked for."""
    wanted = (*config.warmth_names, config.sycophancy_name)
    if config.directions:
        dirs = named_directions(config.directions, wanted, layers)
        return dirs, "saved: " + ", ".join(config.directions)
    triples = triples_split()[0][:48]
    key = sha256_json(
        [
            pair.original.weights_hash,
            list(layers),
            [t.id for t in triples],
            [p.prompt_id for p in direction_prompts],
        ]
    )[:12]
    folder = paths.artifact_dir("directions-fallback", key)
    if (folder / "sycophancy").is_dir() and (folder / "persona").is_dir():
        dirs = [Direction.load(folder / "persona"), Direction.load(folder / "sycophancy")]
        return dirs, f"fallback (reused {folder})"
    log.warning(
        "--fallback-directions: deriving quick persona and sycophancy directions into %s", folder
    )
    backend = get_backend(pair.original, "torch")
    dirs = fallback_directions(backend, triples, direction_prompts, layers)
    for d in dirs:
        d.save(folder / d.name, replace=False)
    return dirs, f"{FALLBACK_NOTE}, derived on the original model, saved in {folder}"


def _reuse(console: Console, out: Path, required: Sequence[str]) -> bool:
    if is_complete(out, required):
        console.print(f"results exist in {out}; reusing them")
        return True
    return False


# ----------------------------------------------------------------------------- interp sweep


@dataclass(frozen=True)
class SweepConfig(CausalConfig):
    """Alpha x layer x direction steering sweep on the original model: sycophancy (p_agree),
    error, warmth, KL to the unsteered model on neutral prompts (over the whole greedy
    continuation, and at the first answer token) and held-out loss, each with a random-direction
    null band."""

    layers: tuple[int, ...] = option((8, 15, 22), help="layers to steer (resid_post)")
    alphas: tuple[float, ...] = option(
        (-1.0, -0.5, -0.25, -0.1, 0.1, 0.25, 0.5, 1.0),
        help="alphas in units of the typical residual norm",
    )
    op: Literal["add", "ablate_add"] = option("add", help="add or ablate_add")
    on: Literal["original", "warm"] = option(
        "original", help="which arm to steer: original or warm"
    )
    null_alphas: tuple[float, ...] = option(
        (),
        help=(
            "alphas at which the random-direction null is measured (none given: every alpha; "
            "null columns are NaN at the others and the figure draws no band there; each null "
            "alpha costs n_random suffix runs per layer)"
        ),
    )
    warmth: bool = option(
        True,
        help="measure warmth by generation, for the directions and for --warmth-random random "
        "directions at every null alpha (the warmth null band)",
    )
    warmth_random: int = option(
        3,
        help="random directions whose warmth is measured (the first of the n_random; each costs "
        "one generation per layer and null alpha)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        stray = [a for a in self.null_alphas if a not in self.alphas]
        if stray:
            raise ConfigError(
                f"null_alphas {stray} are not among the sweep's alphas {list(self.alphas)}: "
                "the null band is drawn at the sweep's alphas only"
            )
        if not 2 <= self.warmth_random <= self.n_random:
            raise ConfigError(
                f"warmth_random must lie in [2, n_random={self.n_random}] (a band needs two "
                f"random directions), found {self.warmth_random}"
            )


def run_sweep(config: SweepConfig, console: Console | None = None) -> int:
    """Write ``steering_sweep.csv`` (and the warmth replies)."""
    console = console or Console()
    out = result_folder("sweep", config)
    if _reuse(console, out, ("steering_sweep.csv",)):
        return 0
    _check_causal_inputs(config)
    pair = load_pair(config.model, config.warm, **config.load_kwargs())
    prompts, dir_prompts = study_prompts(config.per_task, config.seed)
    directions, dir_source = _directions(config, pair, config.layers, dir_prompts)
    loaded = pair.original if config.on == "original" else pair.warm
    result = steering_sweep(
        loaded,
        pair.system(config.on),
        prompts,
        triples_split(),
        directions,
        layers=config.layers,
        alphas=config.alphas,
        op=config.op,
        null_alphas=config.null_alphas or config.alphas,
        n_random=config.n_random,
        seed=config.seed,
        batch_size=config.batch_size,
        n_boot=config.n_boot,
        warmth=warmth_scorer() if config.warmth else None,
        n_requests=config.n_requests,
        max_new_tokens=config.max_new_tokens,
        warmth_random=config.warmth_random,
    )
    console.print(f"sweep: {result.n_settings} settings + {result.n_null} random ({dir_source})")
    with writing_result(
        out,
        stage="sweep",
        config=config,
        directions=dir_source,
        warm=pair.warm_source,
        norms=result.norms,
        n_prompts=len(prompts),
        null={
            "alphas": list(config.null_alphas or config.alphas),
            "n_random": config.n_random,
            "n_random_warmth": result.n_warmth_null,
            "band": "2.5th-97.5th percentile of the random directions' means",
        },
        kl={
            "kl_continuation": "KL(unsteered || steered) averaged over the unsteered model's "
            f"greedy continuation ({config.max_new_tokens} tokens) of the neutral prompts",
            "kl_first_token": "KL(unsteered || steered) at the first answer token of the neutral "
            "prompts",
        },
        split=split_record("evaluation", [p.item_id for p in prompts]),
        **loaded.provenance(),
    ) as tmp:
        result.table.to_csv(tmp / "steering_sweep.csv", index=False)
        if result.replies is not None:
            result.replies.to_csv(tmp / "warmth_replies.csv", index=False)
    table = result.table
    shown = ["p_agree", "error", "warmth", "kl_continuation"]
    view = table[(table.direction != "none") & table.metric.isin(shown)]
    _print_table(
        console,
        view,
        f"steering sweep ({out / 'steering_sweep.csv'})",
        list(SWEEP_COLUMNS),
    )
    return 0


# ----------------------------------------------------------------------------- interp ablate


@dataclass(frozen=True)
class AblateConfig(CausalConfig):
    """The verdict: ablate each warmth direction (and sycophancy, and random controls) from the
    warm model; add the warmth direction to the original; error, agreement and warmth per
    condition against both references, with paired tests."""

    add_layer: int = option(15, help="layer where the warmth direction is added to the original")
    add_alpha: float = option(0.5, help="alpha of the addition (units of the residual norm)")
    layers: tuple[int, ...] = option(
        (), help="layers to ablate at (none: every layer the direction has)"
    )


def run_ablate(config: AblateConfig, console: Console | None = None) -> int:
    """Write ``verdict.csv``, ``per_prompt.csv``, ``warmth.csv`` and ``verdict.md``."""
    console = console or Console()
    out = result_folder("verdict", config)
    if _reuse(console, out, ("verdict.csv", "verdict.md")):
        console.print((out / "verdict.md").read_text())
        return 0
    _check_causal_inputs(config)
    pair = load_pair(config.model, config.warm, **config.load_kwargs())
    prompts, dir_prompts = study_prompts(config.per_task, config.seed)
    train, held = triples_split()
    layers = tuple(config.layers) or tuple(range(pair.original.n_layers))
    directions, dir_source = _directions(config, pair, layers, dir_prompts)
    warmth_dirs = [d for d in directions if d.name.startswith(config.warmth_names)]
    if not warmth_dirs:
        raise ConfigError(
            f"no warmth direction among {[d.name for d in directions]} "
            f"(warmth_names {config.warmth_names})"
        )
    original = Arm("original", "none", pair.backend("original"), None)
    warm = Arm("warm", "none", pair.backend("warm"), pair.warm_system)
    norms = norms_for(original.backend, train, [config.add_layer])
    arms = direction_arms(
        original,
        warm,
        directions,
        warmth_dirs[0],
        layers=layers,
        n_random=config.n_random,
        seed=config.seed,
        add_layer=config.add_layer,
        add_alpha=config.add_alpha,
        norms=norms,
    )
    add_label = next((a.label for a in arms if a.label.startswith("add:")), None)
    requests = [(t.id, t.request) for t in held[: config.n_requests]]
    per_prompt, warmth = measure_arms(
        arms,
        prompts,
        requests,
        warmth_scorer(),
        max_new_tokens=config.max_new_tokens,
        batch_size=config.batch_size,
        warmth_replicates=3,
        progress=console.print,
    )
    table = verdict_table(per_prompt, warmth, n_boot=config.n_boot, seed=config.seed)
    sentence = verdict_sentence(table, [d.name for d in warmth_dirs], add_label)
    md = (
        f"# Verdict\n\n{sentence}\n\nWarm model: {pair.warm_source}. Directions: {dir_source}. "
        f"Prompts: {len(prompts)} ({config.per_task} items per task); warmth on {len(requests)} "
        "held-out requests "
        f"(greedy, {config.max_new_tokens} tokens; random-ablation warmth pooled over 3 of the "
        f"{config.n_random} directions).\n"
    )
    with writing_result(
        out,
        stage="verdict",
        config=config,
        directions=dir_source,
        warm=pair.warm_source,
        n_prompts=len(prompts),
        split=split_record("evaluation", [p.item_id for p in prompts]),
        **pair.original.provenance(),
    ) as tmp:
        table.to_csv(tmp / "verdict.csv", index=False)
        per_prompt.to_csv(tmp / "per_prompt.csv", index=False)
        warmth.to_csv(tmp / "warmth.csv", index=False)
        (tmp / "verdict.md").write_text(md)
    _print_table(
        console,
        table[table.condition == "sad + wrong belief"],
        "verdict: sad + wrong belief",
        [
            "model",
            "intervention",
            "measure",
            "mean",
            "ci_low",
            "ci_high",
            "diff_vs_warm",
            "p_value",
        ],
    )
    console.print(md)
    return 0


# ----------------------------------------------------------------------------- interp patch


@dataclass(frozen=True)
class PatchConfig(CausalConfig):
    """Patch the original model's residual stream into the warm model (and back), layer by layer,
    at the last token and at all shared positions, on sad + wrong-belief prompts."""

    layers: tuple[int, ...] = option((), help="layers to patch (none: every layer)")


def run_patch(config: PatchConfig, console: Console | None = None) -> int:
    """Write ``patching.csv``."""
    console = console or Console()
    out = result_folder("patching", config)
    if _reuse(console, out, ("patching.csv",)):
        return 0
    pair = load_pair(config.model, config.warm, **config.load_kwargs())
    prompts, _ = study_prompts(config.per_task, config.seed, templates=("incorrect",))
    prompts = [p for p in prompts if p.condition == "emotion:sad"]
    layers = tuple(config.layers) or tuple(range(pair.original.n_layers))
    table = patch_both_ways(
        PatchArm("original", pair.original, None),
        PatchArm("warm", pair.warm, pair.warm_system),
        prompts,
        layers,
        batch_size=config.batch_size // 2 or 1,
        n_boot=config.n_boot,
        seed=config.seed,
    )
    with writing_result(
        out,
        stage="patching",
        config=config,
        warm=pair.warm_source,
        n_prompts=len(prompts),
        split=split_record("evaluation", [p.item_id for p in prompts]),
        **pair.original.provenance(),
    ) as tmp:
        table.to_csv(tmp / "patching.csv", index=False)
    _print_table(
        console,
        table,
        f"fraction of the gap recovered ({out / 'patching.csv'})",
        ["patch", "positions", "layer", "recovered", "ci_low", "ci_high", "n_items"],
    )
    return 0
