"""``interp steer`` (one prompt, several alphas, side by side), ``interp sweep``, ``interp ablate``
(the verdict experiment) and ``interp patch`` (activation patching), writing tidy tables.

Costs on the embedded model, 2 CPU cores, defaults (16 items, 3 layers, 8 alphas, 10 random
directions): see README / the report; every finished output folder is reused as it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from interp import paths
from interp.artifacts import atomic_dir, provenance, sha256_json, write_json_atomic
from interp.commands.causal_inputs import (
    Arms,
    CausalConfig,
    greedy_replies,
    load_arms,
    load_directions,
    norms_for,
    study_prompts,
    triples_split,
    warmth_scorer,
)
from interp.config import ConfigError, config_to_dict, option
from interp.directions import Direction
from interp.hooks import get_backend
from interp.models import EMBEDDED, load_model
from interp.steer import Intervention, Operator, random_directions, steered

log = logging.getLogger(__name__)


def _out(config: object, stage: str) -> Path:
    explicit = getattr(config, "out", None)
    return Path(explicit) if explicit else paths.artifact_dir(stage, sha256_json(config_to_dict(config))[:12])  # type: ignore[arg-type]


def _print_table(console: Console, df: pd.DataFrame, title: str, cols: list[str]) -> None:
    table = Table(title=title)
    for c in cols:
        table.add_column(c)
    for row in df[cols].itertuples(index=False):
        table.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row])
    console.print(table)


# ----------------------------------------------------------------------------- interp steer

@dataclass(frozen=True)
class SteerConfig:
    """Steer one prompt with a direction at several alphas and show the replies side by side."""

    prompt: str = option(help="the user message", positional=True)
    direction: str = option(help="a Direction folder (vectors.safetensors + meta.json)")
    layer: int = option(help="layer whose resid_post is steered")
    alphas: tuple[float, ...] = option((-8.0, -4.0, 0.0, 4.0, 8.0), help="alphas in units of the typical residual norm at the layer")
    op: str = option("add", help="operator: add, ablate, ablate_add")
    positions: str = option("all", help="prompt, generated or all")
    model: str = option(EMBEDDED, help="model", flag="-m")
    adapter: str | None = option(None, help="LoRA adapter folder or run name")
    system: str | None = option(None, help="system prompt")
    max_new_tokens: int = option(48, help="tokens per reply (greedy)")


def run_steer(config: SteerConfig, console: Console | None = None) -> int:
    console = console or Console()
    if config.op not in ("add", "ablate", "ablate_add"):
        raise ConfigError(f"op must be add, ablate or ablate_add, found {config.op!r}")
    loaded = load_model(config.model, adapter=config.adapter)
    backend = get_backend(loaded, "torch")
    direction = Direction.load(Path(config.direction))
    norms = norms_for(backend, triples_split()[0], [config.layer])
    table = Table(title=f"{direction.name} at layer {config.layer} (residual norm {norms[config.layer]:.1f}), {config.op}, positions {config.positions}")
    table.add_column("alpha")
    table.add_column("reply")
    alphas = (0.0,) if config.op == "ablate" else config.alphas
    for alpha in alphas:
        iv = Intervention(config.op, direction, (config.layer,), alpha=alpha, positions=config.positions)  # type: ignore[arg-type]
        with steered(backend, [iv], norms, phase="generate"):
            reply = greedy_replies(backend, [config.prompt], config.system, config.max_new_tokens)[0]
        table.add_row(f"{alpha:g}", reply)
    console.print(table)
    return 0


# ----------------------------------------------------------------------------- interp sweep

@dataclass(frozen=True)
class SweepConfig(CausalConfig):
    """Alpha x layer x direction steering sweep on the original model: sycophancy (p_agree),
    error, warmth, KL on neutral prompts and held-out loss, with a random-direction null band."""

    layers: tuple[int, ...] = option((8, 15, 22), help="layers to steer (resid_post)")
    alphas: tuple[float, ...] = option((-1.0, -0.5, -0.25, -0.1, 0.1, 0.25, 0.5, 1.0), help="alphas in units of the typical residual norm")
    op: str = option("add", help="add or ablate_add")
    on: str = option("original", help="which arm to steer: original or warm")
    null_alphas: tuple[float, ...] = option((-1.0, 1.0), help="alphas at which the random-direction null is measured (null columns are NaN at the others; each null alpha costs n_random suffix runs per layer)")
    warmth: bool = option(True, help="measure warmth by generation (the real directions only; no null band)")


def run_sweep(config: SweepConfig, console: Console | None = None) -> int:
    from interp.generate import SamplingConfig
    from interp.readouts import build_rows
    from interp.sweep import grid, run_prefix_reuse, sweep_table, warmth_by_setting

    console = console or Console()
    out = _out(config, "sweep")
    if (out / "steering_sweep.csv").is_file():
        console.print(f"results exist in {out}; reusing them")
        return 0
    op: Operator = config.op  # type: ignore[assignment]
    arms = load_arms(config)
    prompts, dir_prompts = study_prompts(config)
    train, held = triples_split()
    directions, dir_source = load_directions(config, arms, config.layers, dir_prompts, train)
    loaded = arms.original if config.on == "original" else arms.warm
    backend = get_backend(loaded, "torch")
    system = arms.system(config.on)
    norms = norms_for(backend, train, config.layers)
    study = build_rows(loaded.tokenizer, prompts, held[:16], system=system)
    settings = grid(directions, config.layers, config.alphas, op)
    nulls = grid(random_directions(directions[0], config.n_random, seed=config.seed), config.layers, config.null_alphas, op)
    console.print(f"sweep: {len(settings)} settings + {len(nulls)} random, {len(study.rows)} rows ({dir_source})")
    readings = run_prefix_reuse(loaded, study.rows, settings + nulls, norms, batch_size=config.batch_size)
    table = sweep_table(study, readings, settings, nulls, n_boot=config.n_boot, seed=config.seed)
    replies = None
    if config.warmth:
        requests = [t.request for t in held[: config.n_requests]]
        from interp.chat import as_messages

        convs = [tuple(as_messages(r, system=system)) for r in requests]
        w = warmth_by_setting(backend, convs, settings, norms, warmth_scorer(), SamplingConfig(max_new_tokens=config.max_new_tokens, temperature=0.0),
                              n_boot=config.n_boot, seed=config.seed)
        replies = w[["direction", "layer", "alpha", "replies"]].explode("replies")
        table = pd.concat([table, w.drop(columns="replies")], ignore_index=True)
    with atomic_dir(out) as tmp:
        table.to_csv(tmp / "steering_sweep.csv", index=False)
        if replies is not None:
            replies.to_csv(tmp / "warmth_replies.csv", index=False)
        write_json_atomic(tmp / paths.META_FILE, provenance(
            stage="sweep", config=config_to_dict(config), directions=dir_source, warm=arms.warm_source,
            norms=norms, n_prompts=len(prompts), **loaded.provenance()))
    view = table[(table.direction != "none") & table.metric.isin(["p_agree", "error", "warmth"])]
    _print_table(console, view, f"steering sweep ({out / 'steering_sweep.csv'})", ["direction", "layer", "alpha", "metric", "mean", "ci_low", "ci_high", "null_low", "null_high"])
    return 0


# ----------------------------------------------------------------------------- interp ablate

@dataclass(frozen=True)
class AblateConfig(CausalConfig):
    """The verdict: ablate each warmth direction (and sycophancy, and random controls) from the
    warm model; add the warmth direction to the original; error, agreement and warmth per
    condition against both references, with paired tests."""

    add_layer: int = option(15, help="layer where the warmth direction is added to the original")
    add_alpha: float = option(0.5, help="alpha of the addition (units of the residual norm)")
    layers: tuple[int, ...] = option((), help="layers to ablate at (none: every layer the direction has)")


def _ablate_arms(config: AblateConfig, arms: Arms, directions: list[Direction], n_layers: int) -> tuple[list, dict[int, float], str | None]:
    from interp.verdict import Arm

    layers = tuple(config.layers) or tuple(range(n_layers))
    warm_b, orig_b = arms.backend("warm"), arms.backend("original")
    warmth = [d for d in directions if d.name.startswith(config.warmth_names)]
    if not warmth:
        raise ConfigError(f"no warmth direction among {[d.name for d in directions]} (warmth_names {config.warmth_names})")
    norms = norms_for(orig_b, triples_split()[0], [config.add_layer])
    result = [Arm("original", "none", orig_b, None), Arm("warm", "none", warm_b, arms.warm_system)]
    for d in directions:
        use = tuple(layer for layer in layers if layer in d.layers)
        result.append(Arm("warm", f"ablate:{d.name}", warm_b, arms.warm_system, ((Intervention("ablate", d, use),),)))
    rnd = random_directions(warmth[0], config.n_random, seed=config.seed)
    use = tuple(layer for layer in layers if layer in warmth[0].layers)
    result.append(Arm("warm", "ablate:random", warm_b, arms.warm_system, tuple((Intervention("ablate", r, use),) for r in rnd)))
    add_label = None
    if config.add_layer in warmth[0].layers:
        add_label = f"add:{warmth[0].name}"
        result.append(Arm("original", add_label, orig_b, None, ((Intervention("add", warmth[0], (config.add_layer,), alpha=config.add_alpha),),), norms))
    return result, norms, add_label


def run_ablate(config: AblateConfig, console: Console | None = None) -> int:
    from interp.verdict import score_arm, verdict_sentence, verdict_table, warmth_of_arm

    console = console or Console()
    out = _out(config, "verdict")
    if (out / "verdict.csv").is_file():
        console.print(f"results exist in {out}; reusing them")
        console.print((out / "verdict.md").read_text())
        return 0
    arms = load_arms(config)
    prompts, dir_prompts = study_prompts(config)
    train, held = triples_split()
    n_layers = arms.original.n_layers
    all_layers = tuple(config.layers) or tuple(range(n_layers))
    directions, dir_source = load_directions(config, arms, all_layers, dir_prompts, train)
    arm_list, _, add_label = _ablate_arms(config, arms, directions, n_layers)
    scorer = warmth_scorer()
    requests = [(t.id, t.request) for t in held[: config.n_requests]]
    per_prompt, warmth = [], []
    for arm in arm_list:
        console.print(f"scoring {arm.model} / {arm.label} ({len(arm.interventions)} intervention set(s)) ...")
        per_prompt.append(score_arm(arm, prompts, config.batch_size))

        def reply(a, texts):
            with steered(a.backend, a.interventions[0], a.norms, phase="generate"):
                return greedy_replies(a.backend, texts, a.system, config.max_new_tokens)

        warmth_arm = arm if arm.label != "ablate:random" else type(arm)(arm.model, arm.label, arm.backend, arm.system, arm.interventions[:3], arm.norms)
        warmth.append(warmth_of_arm(warmth_arm, requests, reply, scorer))
    pp, wm = pd.concat(per_prompt, ignore_index=True), pd.concat(warmth, ignore_index=True)
    table = verdict_table(pp, wm, n_boot=config.n_boot, seed=config.seed)
    warmth_dirs = [d.name for d in directions if d.name.startswith(config.warmth_names)]
    sentence = verdict_sentence(table, warmth_dirs, add_label)
    md = (f"# Verdict\n\n{sentence}\n\nWarm model: {arms.warm_source}. Directions: {dir_source}. "
          f"Prompts: {len(prompts)} ({config.per_task} items per task); warmth on {len(requests)} held-out requests "
          f"(greedy, {config.max_new_tokens} tokens; random-ablation warmth pooled over 3 of the {config.n_random} directions).\n")
    with atomic_dir(out) as tmp:
        table.to_csv(tmp / "verdict.csv", index=False)
        pp.to_csv(tmp / "per_prompt.csv", index=False)
        wm.to_csv(tmp / "warmth.csv", index=False)
        (tmp / "verdict.md").write_text(md)
        write_json_atomic(tmp / paths.META_FILE, provenance(
            stage="verdict", config=config_to_dict(config), directions=dir_source, warm=arms.warm_source,
            n_prompts=len(prompts), **arms.original.provenance()))
    _print_table(console, table[table.condition == "sad + wrong belief"], "verdict: sad + wrong belief",
                 ["model", "intervention", "measure", "mean", "ci_low", "ci_high", "diff_vs_warm", "p_value"])
    console.print(md)
    return 0


# ----------------------------------------------------------------------------- interp patch

@dataclass(frozen=True)
class PatchConfig(CausalConfig):
    """Patch the original model's residual stream into the warm model (and back), layer by layer,
    at the last token and at all shared positions, on sad + wrong-belief prompts."""

    layers: tuple[int, ...] = option((), help="layers to patch (none: every layer)")


def run_patch(config: PatchConfig, console: Console | None = None) -> int:
    from interp.patching import PatchArm, patch_readings, recovered_table

    console = console or Console()
    out = _out(config, "patching")
    if (out / "patching.csv").is_file():
        console.print(f"results exist in {out}; reusing them")
        return 0
    arms = load_arms(config)
    prompts, _ = study_prompts(config, templates=("incorrect",))
    prompts = [p for p in prompts if p.condition == "emotion:sad"]
    layers = tuple(config.layers) or tuple(range(arms.original.n_layers))
    orig, warm = PatchArm("original", arms.original, None), PatchArm("warm", arms.warm, arms.warm_system)
    tables = []
    for src, tgt in ((orig, warm), (warm, orig)):
        readings = patch_readings(src, tgt, prompts, layers, batch_size=config.batch_size // 2 or 1)
        tables.append(recovered_table(readings, prompts, f"{src.name}->{tgt.name}", n_boot=config.n_boot, seed=config.seed))
    table = pd.concat(tables, ignore_index=True)
    with atomic_dir(out) as tmp:
        table.to_csv(tmp / "patching.csv", index=False)
        write_json_atomic(tmp / paths.META_FILE, provenance(stage="patching", config=config_to_dict(config), warm=arms.warm_source,
                                                            n_prompts=len(prompts), **arms.original.provenance()))
    _print_table(console, table, f"fraction of the gap recovered ({out / 'patching.csv'})", ["patch", "positions", "layer", "recovered", "ci_low", "ci_high", "n_items"])
    return 0
