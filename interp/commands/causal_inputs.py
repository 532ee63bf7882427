"""What the causal commands (``interp sweep / ablate / patch``) share: the original and warm
arms, the directions, the prompts, residual norms and the warmth scorer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from interp import paths
from interp.config import ConfigError, option
from interp.data.build import DataBuildConfig, build_prompt_list
from interp.data.prompt_sets import Prompt
from interp.directions import Direction, direction_folders
from interp.generate import SamplingConfig, generate_replies
from interp.hooks import get_backend
from interp.hooks.base import Backend
from interp.models import EMBEDDED, LoadedModel, ModelLoadError, adapter_folder, load_model
from interp.steer import residual_norms
from interp.warmth.pairs import ReplyTriple, load_split

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CausalConfig:
    """Options shared by the causal commands."""

    model: str = option(EMBEDDED, help="base (original) model: registry name, HF id or folder", flag="-m")
    warm: str = option("embedded-warm", help="warm model: a LoRA adapter folder or fine-tuning run name; if it cannot be found the warm system prompt stands in (recorded in meta.json)")
    directions: tuple[str, ...] = option((), help="Direction folders, or an `interp directions` run folder holding them; none: the newest run under <artifacts>/directions, else quick fallback directions (persona, sycophancy)")
    warmth_names: tuple[str, ...] = option(("persona", "finetune"), help="direction name prefixes that count as warmth directions")
    sycophancy_name: str = option("sycophancy", help="name prefix of the sycophancy direction")
    per_task: int = option(4, help="evaluation items per task (the embedded preset: 4 x 4 tasks)")
    n_random: int = option(10, help="seeded random directions for the null (>= 10)")
    n_requests: int = option(8, help="held-out requests for warmth (greedy replies)")
    max_new_tokens: int = option(32, help="tokens per warmth reply")
    batch_size: int = option(16, help="rows per forward batch")
    seed: int = option(0, help="seed of random directions and bootstraps")
    n_boot: int = option(1000, help="bootstrap resamples")
    out: str | None = option(None, help="output folder (default: <artifacts>/<stage>/<config hash>)")

    def __post_init__(self) -> None:
        if self.n_random < 10:
            raise ConfigError(f"n_random must be >= 10 (the null needs at least 10 random directions), found {self.n_random}")
        if self.per_task < 2 or self.n_requests < 2 or self.batch_size < 1:
            raise ConfigError("per_task and n_requests must be >= 2, batch_size >= 1")
        for d in self.directions:
            if not Path(d).is_dir():
                raise ConfigError(f"directions: {d} is not a folder")


@dataclass
class Arms:
    """The original model and the warm model (adapter) or its system-prompt stand-in."""

    original: LoadedModel
    warm: LoadedModel
    warm_system: str | None
    warm_source: str

    def backend(self, which: str) -> Backend:
        return get_backend(self.original if which == "original" else self.warm, "torch")

    def system(self, which: str) -> str | None:
        return None if which == "original" else self.warm_system


def load_arms(config: CausalConfig) -> Arms:
    """Load the original model and the warm adapter (a second copy with the adapter attached),
    or fall back to the warm system prompt on the original weights."""
    original = load_model(config.model)
    try:
        folder = adapter_folder(config.warm)
    except ModelLoadError as exc:
        from interp.finetune.presets import WARM_SYSTEM_PROMPT

        log.warning("no warm adapter (%s); the warm system prompt stands in for the warm model", exc)
        return Arms(original, original, WARM_SYSTEM_PROMPT, "system prompt (interp.finetune.presets.WARM_SYSTEM_PROMPT)")
    warm = load_model(config.model, adapter=folder)
    return Arms(original, warm, None, f"adapter {folder}")


def _direction_folders(spec: Sequence[str]) -> list[Path]:
    if not spec:
        root = paths.artifacts_root() / "directions"
        runs = sorted((p for p in root.glob("*") if p.is_dir() and (p / paths.META_FILE).is_file()), key=lambda p: p.stat().st_mtime) if root.is_dir() else []
        if not runs:
            return []
        spec = (str(runs[-1]),)
    try:
        return direction_folders(spec)
    except FileNotFoundError as exc:
        raise ConfigError(f"directions: {exc}") from None


def load_directions(config: CausalConfig, arms: Arms, layers: Sequence[int], direction_prompts: Sequence[Prompt],
                    triples: Sequence[ReplyTriple]) -> tuple[list[Direction], str]:
    """Warmth and sycophancy directions (saved ones, or the fallback derived now), keeping only
    those matching ``warmth_names`` / ``sycophancy_name``; and a description of their source."""
    folders = _direction_folders(config.directions)
    wanted = (*config.warmth_names, config.sycophancy_name)
    if folders:
        dirs = [Direction.load(f) for f in folders]
        keep = [d for d in dirs if d.name.startswith(wanted) and set(layers) <= set(d.layers)]
        if not keep:
            raise ConfigError(f"no direction named {wanted} with layers {list(layers)} in {', '.join(map(str, folders))}")
        return keep, "saved: " + ", ".join(str(f) for f in folders)
    from interp.artifacts import sha256_json
    from interp.fallback_directions import persona_direction, sycophancy_direction

    key = sha256_json([arms.original.weights_hash, list(layers), [t.id for t in triples[:48]], [p.prompt_id for p in direction_prompts]])[:12]
    folder = paths.artifact_dir("directions-fallback", key)
    if (folder / "sycophancy").is_dir() and (folder / "persona").is_dir():
        return [Direction.load(folder / "persona"), Direction.load(folder / "sycophancy")], f"fallback (reused {folder})"
    log.info("no `interp directions` run found; deriving quick fallback directions into %s", folder)
    backend = get_backend(arms.original, "torch")
    dirs = [persona_direction(backend, triples[:48], layers), sycophancy_direction(backend, direction_prompts, layers)]
    for d in dirs:
        d.save(folder / d.name, replace=False)
    return dirs, f"fallback (interp.fallback_directions, derived on the original model, saved in {folder})"


def study_prompts(config: CausalConfig, templates: tuple[str, ...] = ("no_belief", "incorrect")) -> tuple[list[Prompt], list[Prompt]]:
    """Evaluation prompts (the first ``per_task`` items per task) and disjoint prompts for
    fallback directions (the next ``per_task`` items), unmodified and sad conditions."""
    prompts, _ = build_prompt_list(DataBuildConfig(conditions=("unmodified", "emotion:sad"), templates=templates, per_task=2 * config.per_task, seed=config.seed))
    first: dict[str, list[str]] = {}
    for p in prompts:
        items = first.setdefault(p.task, [])
        if p.item_id not in items:
            items.append(p.item_id)
    eval_items = {i for items in first.values() for i in items[: config.per_task]}
    return [p for p in prompts if p.item_id in eval_items], [p for p in prompts if p.item_id not in eval_items]


def triples_split() -> tuple[list[ReplyTriple], list[ReplyTriple]]:
    split = load_split()
    return list(split.train), list(split.held_out)


def norms_for(backend: Backend, triples: Sequence[ReplyTriple], layers: Sequence[int]) -> dict[int, float]:
    """Typical resid_post norm per layer on 16 training request/reply conversations."""
    from interp.chat import Message

    convs = [[Message("user", t.request), Message("assistant", t.neutral)] for t in triples[:16]]
    return residual_norms(backend, convs, layers)


def warmth_scorer() -> Any:
    """The embedding classifier's P(warm) as a function of replies."""
    from interp.warmth.report import WarmthInstruments

    inst = WarmthInstruments.load(None)
    assert inst.encoder is not None and inst.classifier is not None
    return lambda replies: np.asarray(inst.classifier.score_texts(inst.encoder, list(replies)), dtype=float)


def greedy_replies(backend: Backend, requests: Sequence[str], system: str | None, max_new_tokens: int) -> list[str]:
    from interp.chat import as_messages

    convs = [tuple(as_messages(r, system=system)) for r in requests]
    return generate_replies(backend, convs, SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.0, batch_size=8))
