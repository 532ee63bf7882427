"""The inputs every definition-based command shares, and the row sets and contrasts they make.

:class:`DefinitionInputs` is the common part of the ``interp directions`` and ``interp probes``
configs (a frozen dataclass that doubles as command-line options); :func:`prepare` builds the
prompts, the row sets, the forced-choice sycophancy labels and the contrasts from it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from interp.artifacts import sha256_json
from interp.config import ConfigError, option
from interp.data.build import prompt_list
from interp.data.items import PAPER_TASKS
from interp.data.prompt_sets import Prompt
from interp.definitions.activations import ModelSource, forced_choice_labels
from interp.definitions.contrasts import Contrast, ModelSide, RowSet
from interp.definitions.sources import (
    ab_rows,
    belief_prompts,
    finetune_contrast,
    persona_contrast,
    persona_rows,
    prompt_rows,
    sad_context_contrast,
    sycophancy_ab_contrast,
    sycophancy_contrast,
)
from interp.models import EMBEDDED, LoadOptions
from interp.warmth.pairs import ReplyTriple, load_split

log = logging.getLogger(__name__)

DEFINITIONS: tuple[str, ...] = ("finetune", "persona", "sad_context", "sycophancy", "sycophancy_ab")
CONDITIONS = ("unmodified", "emotion:sad")
TEMPLATES = ("no_belief", "incorrect", "doubt")


@dataclass(frozen=True)
class DefinitionInputs(LoadOptions):
    """Model, prompts and reply pairs behind the direction definitions."""

    model: str = option(EMBEDDED, help="registry name, Hugging Face id or local folder", flag="-m")
    adapter: str | None = option(
        None, help="PEFT adapter folder (the warm fine-tune); adds the finetune definition"
    )
    definitions: tuple[str, ...] = option(
        (),
        help=(
            f"definitions to compute (none: all of {', '.join(DEFINITIONS)}; finetune needs "
            "--adapter)"
        ),
    )
    tasks: tuple[str, ...] = option((), help="item tasks (none: the paper's four)")
    per_task: int = option(
        12,
        help=(
            "items per task for the prompt-based definitions (x 2 conditions x 3 templates "
            "prompts each)"
        ),
    )
    persona_split: Literal["train", "held_out", "all"] = option(
        "train", help="which reply triples the persona definition reads"
    )
    system: str | None = option(
        None, help="system prompt for every prompt (default: the model's own)"
    )
    seed: int = option(0, help="seed of the statement assignment, splits and bootstraps")
    batch_size: int = option(8, help="prompts per forward batch")
    backend: Literal["torch", "transformerlens", "nnsight"] = option("torch", help="hook backend")

    def __post_init__(self) -> None:
        bad = [d for d in self.definitions if d not in DEFINITIONS]
        if bad:
            raise ConfigError(f"definitions: unknown {bad}; choose from {list(DEFINITIONS)}")
        if "finetune" in self.definitions and self.adapter is None:
            raise ConfigError(
                "definitions: finetune needs --adapter (the fine-tuned adapter folder)"
            )
        if self.per_task < 2:
            raise ConfigError(f"per_task must be at least 2, found {self.per_task}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, found {self.batch_size}")

    @property
    def chosen(self) -> tuple[str, ...]:
        """The definitions to compute, in the canonical order."""
        wanted = self.definitions or tuple(
            d for d in DEFINITIONS if d != "finetune" or self.adapter is not None
        )
        return tuple(d for d in DEFINITIONS if d in wanted)

    def source(self, show_progress: bool = True) -> ModelSource:
        """The lazily loaded model (and adapter) these inputs name."""
        return ModelSource(
            self.model,
            self.adapter,
            backend=self.backend,
            load=self.load_kwargs(),
            batch_size=self.batch_size,
            show_progress=show_progress,
        )


@dataclass
class Prepared:
    """Everything the definitions read: prompts, triples, row sets, labels and contrasts."""

    prompts: list[Prompt]
    triples: tuple[ReplyTriple, ...]
    rowsets: dict[str, RowSet]
    labels: pd.DataFrame | None
    contrasts: dict[str, Contrast]

    def needs(self, names: tuple[str, ...] | None = None) -> list[tuple[ModelSide, RowSet]]:
        """(model side, row set) pairs the named contrasts read (all by default)."""
        chosen = [self.contrasts[n] for n in (names or tuple(self.contrasts))]
        return sorted(
            {(side, self.rowsets[key]) for c in chosen for side, key in c.rowsets},
            key=lambda n: (n[0], n[1].key),
        )

    def position(self, name: str) -> str:
        """The position a contrast's activations are read at."""
        keys = {key for _, key in self.contrasts[name].rowsets}
        positions = {self.rowsets[k].position for k in keys}
        return positions.pop() if len(positions) == 1 else "+".join(sorted(positions))


def eval_prompts(inputs: DefinitionInputs) -> list[Prompt]:
    """Unmodified and sad prompts, without and with a wrong belief, ``per_task`` items per task,
    from the derivation side of the item split (the evaluation side never derives a direction)."""
    prompts, _ = prompt_list(
        side="derivation",
        tasks=inputs.tasks or PAPER_TASKS,
        conditions=CONDITIONS,
        templates=TEMPLATES,
        per_task=inputs.per_task,
        seed=inputs.seed,
    )
    return prompts


def persona_triples(split: str) -> tuple[ReplyTriple, ...]:
    """The reply triples of one part of the shared split."""
    s = load_split()
    return {"train": s.train, "held_out": s.held_out, "all": s.train + s.held_out}[split]


def prepare(
    inputs: DefinitionInputs, source: ModelSource, need_labels: bool | None = None
) -> Prepared:
    """Build the row sets and contrasts of the chosen definitions (labels through the base
    model)."""
    chosen = inputs.chosen
    prompts = eval_prompts(inputs)
    triples = persona_triples(inputs.persona_split)
    rowsets = {"prompts": prompt_rows(prompts, inputs.system)}
    contrasts: dict[str, Contrast] = {}
    if "persona" in chosen:
        rowsets["persona"] = persona_rows(triples, inputs.system)
    if "sycophancy_ab" in chosen:
        rowsets["ab"] = ab_rows(prompts, inputs.system)
    labels = None
    if need_labels or (need_labels is None and "sycophancy" in chosen):
        labels = forced_choice_labels(
            source.backend("base"),
            belief_prompts(prompts),
            system=inputs.system,
            batch_size=2 * inputs.batch_size,
        )
    builders = {
        "finetune": lambda: finetune_contrast(prompts),
        "persona": lambda: persona_contrast(triples),
        "sad_context": lambda: sad_context_contrast(prompts),
        "sycophancy": lambda: sycophancy_contrast(labels),  # type: ignore[arg-type]
        "sycophancy_ab": lambda: sycophancy_ab_contrast(prompts),
    }
    for name in chosen:
        contrasts[name] = builders[name]()
    return Prepared(prompts, triples, rowsets, labels, contrasts)


def inputs_digest(prepared: Prepared) -> str:
    """Content hash of the prompts and triples (for meta.json)."""
    return sha256_json(
        [[p.to_record() for p in prepared.prompts], [t.id for t in prepared.triples]]
    )[:16]
