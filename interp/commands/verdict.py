"""``interp verdict``: the verdict protocol (:mod:`interp.causal.protocol`) on the item split.

Reads the derivation split for the headline rule and the original model's mean projections,
the evaluation split for everything it reports. Writes ``verdict_gap.csv``, ``verdict_arms.csv``,
``verdict_null.csv``, ``verdict_damage.csv``, the per-prompt, generation and warmth rows,
``null_match.json`` and ``verdict.md`` (the sentence the rules allow), with both splits' item
ids in meta.json.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from interp.artifacts import is_complete, result_folder, write_json_atomic, writing_result
from interp.causal.damage import DamageUnits, continuation_units, text_units
from interp.causal.inputs import (
    check_direction_folders,
    named_directions,
    norms_for,
    triples_split,
    warmth_scorer,
)
from interp.causal.pair import ModelPair, load_pair
from interp.causal.plant import plant_targets, planted_model
from interp.causal.protocol import ProtocolSettings, UneditedRows, run_protocol
from interp.causal.verdict_text import verdict_sentences
from interp.commands.verdict_unedited import (
    VerdictUneditedConfig,
    protocol_models,
    read_unedited,
    split_meta,
    split_prompts,
)
from interp.config import ConfigError, option
from interp.directions import Direction
from interp.evaluate import conversation
from interp.models import load_model
from interp.phase_clock import PhaseClock

OUTPUTS = (
    "verdict_gap.csv",
    "verdict_arms.csv",
    "verdict_null.csv",
    "verdict_damage.csv",
    "verdict.md",
)


@dataclass(frozen=True)
class VerdictConfig(VerdictUneditedConfig):
    """The verdict protocol: is the warm model worse (gap first, headline cells fixed on the
    derivation split), and does removing a direction close the gap beyond variance-matched random
    directions, without damage? Its direction-free measurements are those of
    :class:`VerdictUneditedConfig` (whose options it extends)."""

    directions: tuple[str, ...] = option(
        (), help="Direction folders or an `interp directions` run (required)"
    )
    targets: tuple[str, ...] = option(
        ("finetune", "persona"), help="names (prefixes) of the directions to remove"
    )
    layers: tuple[int, ...] = option(
        (), help="candidate layers for the removal (none: every layer); the rule picks one"
    )
    removal_layer: int | None = option(
        None,
        help=(
            "remove at this layer (none: the layer of --layers where the derivation split shows "
            "the largest standardized shift)"
        ),
    )
    per_task_derivation: int = option(
        12, help="derivation-split items per task (headline rule, mean projections)"
    )
    n_random: int = option(20, help="variance-matched random directions per target (>= 20)")
    null_items_per_task: int = option(
        10,
        help=(
            "items per task the null is scored on in headline cells without an evaluation gap "
            "(cells with a gap: every item)"
        ),
    )
    n_requests: int = option(8, help="held-out requests whose greedy replies measure warmth")
    max_new_tokens: int = option(32, help="tokens per warmth reply")
    n_damage_prompts: int = option(16, help="evaluation prompts whose continuation KL is measured")
    damage_tokens: int = option(16, help="tokens of the unedited continuation scored for KL")
    n_heldout: int = option(16, help="held-out neutral replies whose loss measures damage")
    headline_threshold_pp: float = option(
        0.0, help="a cell carries the headline when its derivation gap exceeds this (pp)"
    )
    plant: str | None = option(
        None,
        help=(
            "check the protocol on a planted effect: the warm model is the original plus this "
            "direction (a name prefix in --directions) at --plant-layer; the targets become the "
            "planted direction and a random one of the same size"
        ),
    )
    plant_layer: int | None = option(None, help="layer of the plant (none: the middle layer)")
    plant_scale: float = option(
        1.0,
        help=(
            "the plant's length in units of the typical residual norm at its layer (negative: "
            "planted against the named direction)"
        ),
    )
    unedited: str | None = option(
        None,
        help=(
            "a finished `interp verdict-unedited` folder measured with this run's models, split "
            "and generation settings (checked): its rows are used, not measured again (none: "
            "measured here)"
        ),
    )
    hooked: bool = option(
        False,
        help=(
            "score every edited arm and its damage by a full hooked forward (the reference "
            "engine) instead of running the clean prefix below the edited layer once per batch"
        ),
    )
    seed: int = option(0, help="seed of statements, random directions and bootstraps")
    n_boot: int = option(1000, help="bootstrap resamples")
    out: str | None = option(
        None, help="output folder (default: <artifacts>/verdict-protocol/<hash>)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_random < 20:
            raise ConfigError(
                f"n_random must be >= 20 (a null distribution), found {self.n_random}"
            )
        if not self.targets:
            raise ConfigError("targets: name at least one direction to remove")
        if self.null_items_per_task < 2:
            raise ConfigError(f"null_items_per_task must be >= 2, found {self.null_items_per_task}")
        if self.plant is not None and not (
            self.plant_scale != 0 and math.isfinite(self.plant_scale)
        ):
            raise ConfigError(f"plant_scale must be finite and non-zero, found {self.plant_scale}")
        if self.plant is not None and self.unedited is not None:
            raise ConfigError(
                "unedited: a planted run measures its own unedited rows (the warm model is the "
                "plant), so --unedited cannot be given with --plant"
            )
        if self.removal_layer is not None and self.layers and self.removal_layer not in self.layers:
            raise ConfigError(
                f"removal_layer {self.removal_layer} is not one of --layers {list(self.layers)}"
            )

    def unedited_config(self) -> VerdictUneditedConfig:
        """The ``interp verdict-unedited`` config whose rows this run would measure (its own
        values of that command's options; ``out`` left to that command)."""
        shared = {f.name for f in dataclasses.fields(VerdictUneditedConfig)} - {"out"}
        return VerdictUneditedConfig(**{name: getattr(self, name) for name in shared})


def _planted(
    pair: ModelPair, config: VerdictConfig, layers: tuple[int, ...]
) -> tuple[ModelPair, list[Direction]]:
    """The pair whose warm model is the original plus the planted direction, and the two
    targets (planted, random of the same size)."""
    assert config.plant is not None
    n_layers = pair.original.n_layers
    layer = n_layers // 2 if config.plant_layer is None else config.plant_layer
    if not 0 <= layer < n_layers:
        raise ConfigError(
            f"plant_layer {layer} is not a layer of {config.model} (0-{n_layers - 1})"
        )
    found = named_directions(config.directions, (config.plant,), (layer,))
    exact = [d for d in found if d.name == config.plant]
    if not exact and len(found) > 1:
        raise ConfigError(
            f"plant: {config.plant!r} names several directions "
            f"({', '.join(d.name for d in found)}); give one name exactly"
        )
    source = (exact or found)[0]
    derivation_triples, _ = triples_split()
    norm = norms_for(pair.backend("original"), derivation_triples, [layer])[layer]
    vector = source.unit(layer).float() * config.plant_scale * norm
    label = f"plant:{source.name}@{layer}x{config.plant_scale:g}"
    warm = planted_model(pair.original, vector, layer, label=label)
    source_text = (
        f"planted: the original plus {config.plant_scale:g} x the typical residual norm "
        f"({norm:.3g}) along {source.name} at layer {layer}"
    )
    planted_targets = plant_targets(vector, layers, name=f"planted-{source.name}", seed=config.seed)
    return ModelPair(pair.original, warm, None, source_text), list(planted_targets)


def run_verdict(config: VerdictConfig, console: Console | None = None) -> int:
    """Run the protocol and write its tables and sentence."""
    console = console or Console()
    out = result_folder("verdict-protocol", config)
    if is_complete(out, OUTPUTS):
        console.print(f"results exist in {out}; reusing them")
        console.print((out / "verdict.md").read_text())
        return 0
    if not config.directions:
        raise ConfigError("directions: name the Direction folders (or an `interp directions` run)")
    check_direction_folders("directions", config.directions)
    clock = PhaseClock(console.print)
    clock("loading the models and the split")
    derivation, evaluation = split_prompts(
        config.per_task_derivation, config.per_task_evaluation, config.seed
    )
    if config.plant:
        original = load_model(config.model, **config.load_kwargs())
        pair = ModelPair(original, original, None, "", config.load_kwargs())
    else:
        pair = load_pair(config.model, config.warm, **config.load_kwargs())
    layers = tuple(config.layers) or tuple(range(pair.original.n_layers))
    if config.removal_layer is not None and config.removal_layer not in layers:
        raise ConfigError(
            f"removal_layer {config.removal_layer} is not a layer of {config.model} "
            f"(0-{pair.original.n_layers - 1})"
        )
    if config.plant:
        pair, targets = _planted(pair, config, layers)
    else:
        targets = named_directions(config.directions, config.targets, layers)
    models = protocol_models(pair, None if config.plant else config.cold)
    unedited: UneditedRows | None = None
    if config.unedited is not None:
        unedited = read_unedited(Path(config.unedited), config.unedited_config())
    _, held = triples_split()
    requests = [(t.id, t.request) for t in held[: config.n_requests]]
    texts = [(t.id, t.request, t.neutral) for t in held[: config.n_heldout]]
    units: dict[str, tuple[DamageUnits, DamageUnits]] = {}
    clock("damage units: the unedited continuations and the held-out texts")
    for name, arm in (("original", models.original), ("warm", models.warm)):
        convs = [
            (p.prompt_id, conversation(p, arm.system))
            for p in evaluation[: config.n_damage_prompts]
        ]
        units[name] = (
            continuation_units(arm.backend, convs, max_new_tokens=config.damage_tokens),
            text_units(arm.backend.loaded.tokenizer, texts),
        )
    settings = ProtocolSettings(
        n_random=config.n_random,
        n_boot=config.n_boot,
        seed=config.seed,
        headline_threshold_pp=config.headline_threshold_pp,
        batch_size=config.batch_size,
        max_new_tokens=config.max_new_tokens,
        removal_layer=config.removal_layer,
        null_items_per_task=config.null_items_per_task,
        generation_items_per_task=config.generation_items_per_task,
        generation_tokens=config.generation_tokens,
        suffix_engine=not config.hooked,
    )
    result = run_protocol(
        models,
        targets,
        layers,
        derivation,
        evaluation,
        requests,
        warmth_scorer(),
        units,
        settings,
        progress=clock,
        unedited=unedited,
    )
    clock("the verdict's tables and sentence")
    text = verdict_sentences(
        result.gap,
        result.headline,
        result.gap_cells,
        result.arms,
        result.null,
        result.damage,
        [d.name for d in targets],
        config.headline_threshold_pp,
    )
    md = (
        f"# Verdict\n\n{text}\n\nWarm model: {pair.warm_source}. Targets: "
        + "; ".join(
            f"{d.name} removed at layer {int(result.null_match[d.name]['layer'][0])} (shift "
            f"{result.null_match[d.name]['shift'][0]:+.3g} along its unit vector; layer "
            + (
                "fixed by --removal-layer"
                if config.removal_layer is not None
                else f"chosen among {layers[0]}-{layers[-1]} on the derivation split"
            )
            + ")"
            for d in targets
        )
        + ". Derivation split: "
        f"{len({p.item_id for p in derivation})} items; evaluation split: "
        f"{len({p.item_id for p in evaluation})} items; {config.n_random} random directions per "
        "target, matched in variance, each with the fine-tune's own shift along it removed.\n"
    )
    with writing_result(
        out,
        stage="verdict-protocol",
        config=config,
        warm=pair.warm_source,
        cold=config.cold if models.cold is not None else None,
        unedited=config.unedited,
        targets=[d.name for d in targets],
        headline=result.headline,
        gap_cells=result.gap_cells,
        engine_check=result.engine_check,
        phase_seconds=clock.record(),
        split=split_meta(derivation, evaluation),
        **pair.original.provenance(),
    ) as tmp:
        result.gap.to_csv(tmp / "verdict_gap.csv", index=False)
        result.arms.to_csv(tmp / "verdict_arms.csv", index=False)
        result.null.to_csv(tmp / "verdict_null.csv", index=False)
        result.generation.to_csv(tmp / "generation.csv", index=False)
        result.damage.to_csv(tmp / "verdict_damage.csv", index=False)
        result.per_prompt.to_csv(tmp / "per_prompt.csv", index=False)
        result.warmth.to_csv(tmp / "warmth.csv", index=False)
        write_json_atomic(tmp / "null_match.json", result.null_match)
        (tmp / "verdict.md").write_text(md)
    console.print(md)
    return 0
