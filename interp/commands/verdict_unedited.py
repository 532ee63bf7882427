"""``interp verdict-unedited``: the verdict protocol's direction-free measurements, on their own.

The verdict (:mod:`interp.commands.verdict`) first measures the unedited models: forced choice
of the original, warm and cold models on the derivation split (the headline rule's input), the
cold model on the evaluation split, and the unedited models' generation measure
(:func:`interp.causal.protocol.unedited_rows`). None of it needs a direction, so a study runs
this command beside the directions step and hands its folder to ``interp verdict --unedited``,
which checks that the folder was measured with its own models, split and settings and then
measures only what needs the directions.

Writes ``unedited_derivation.csv``, ``unedited_cold_evaluation.csv``, ``unedited_generation.csv``
and meta.json (the config, both splits' item ids, model provenance).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from interp import paths
from interp.artifacts import is_complete, result_folder, writing_result
from interp.causal.arms import Arm
from interp.causal.pair import ModelPair, load_pair
from interp.causal.protocol import Models, ProtocolSettings, UneditedRows, unedited_rows
from interp.config import ConfigError, config_to_dict, option
from interp.data.build import prompt_list
from interp.data.prompt_sets import Prompt
from interp.data.split import Side, split_record
from interp.hooks import get_backend
from interp.models import EMBEDDED, LoadOptions, ModelLoadError
from interp.phase_clock import PhaseClock

log = logging.getLogger(__name__)

FILES = {
    "derivation": "unedited_derivation.csv",
    "cold_evaluation": "unedited_cold_evaluation.csv",
    "generation": "unedited_generation.csv",
}
# string columns that a CSV round trip must keep as text (ids such as "12" would become numbers)
_TEXT = {"prompt_id": str, "item_id": str, "label": str}


@dataclass(frozen=True)
class VerdictUneditedConfig(LoadOptions):
    """The verdict's measurements that need no direction (derivation-split forced choice of the
    unedited models, the cold model on the evaluation split, the unedited generation measure)."""

    model: str = option(EMBEDDED, help="base (original) model", flag="-m")
    warm: str = option("embedded-warm", help="warm LoRA adapter folder or fine-tuning run name")
    cold: str | None = option(
        "embedded-cold", help="cold adapter or run name (none or missing: no cold contrast)"
    )
    per_task_derivation: int = option(12, help="derivation-split items per task")
    per_task_evaluation: int = option(38, help="evaluation-split items per task (0: all of them)")
    generation_items_per_task: int = option(
        5, help="items per task (every cell) of the generation measure beside forced choice"
    )
    generation_tokens: int = option(48, help="tokens per reply of the generation measure")
    batch_size: int = option(16, help="prompts per forward batch")
    seed: int = option(0, help="seed of statements")
    out: str | None = option(
        None, help="output folder (default: <artifacts>/verdict-unedited/<hash>)"
    )

    def __post_init__(self) -> None:
        if self.per_task_derivation < 2 or self.per_task_evaluation < 0:
            raise ConfigError("per_task_derivation must be >= 2 and per_task_evaluation >= 0")

    def settings(self) -> ProtocolSettings:
        """The protocol settings these measurements depend on (the rest keep their defaults)."""
        return ProtocolSettings(
            batch_size=self.batch_size,
            seed=self.seed,
            generation_items_per_task=self.generation_items_per_task,
            generation_tokens=self.generation_tokens,
        )


def split_prompts(
    per_task_derivation: int, per_task_evaluation: int, seed: int
) -> tuple[list[Prompt], list[Prompt]]:
    """Neutral and sad prompts, without and with a wrong belief, for the first items per task
    of each side of the split (``per_task_evaluation=0``: the whole evaluation side)."""
    sides: list[list[Prompt]] = []
    plan: tuple[tuple[Side, int], ...] = (
        ("derivation", per_task_derivation),
        ("evaluation", per_task_evaluation),
    )
    for side, n in plan:
        prompts, _ = prompt_list(
            side=side,
            per_task=n or None,
            conditions=("unmodified", "emotion:sad"),
            templates=("no_belief", "incorrect"),
            seed=seed,
        )
        sides.append(prompts)
    return sides[0], sides[1]


def split_meta(derivation: Sequence[Prompt], evaluation: Sequence[Prompt]) -> dict[str, Any]:
    """What meta.json records of the two sides :func:`split_prompts` gave (the rule and the item
    ids of each, :func:`interp.data.split.split_record`)."""
    return {
        "derivation": split_record("derivation", [p.item_id for p in derivation]),
        "evaluation": split_record("evaluation", [p.item_id for p in evaluation]),
    }


def protocol_models(pair: ModelPair, cold: str | None) -> Models:
    """The protocol's three unedited arms on a loaded pair; the cold model (a view of the same
    weights) is left out, with a warning, when ``cold`` is None or cannot be loaded."""
    cold_arm = None
    if cold:
        try:
            cold_model = pair.with_adapter(cold, "cold")  # the same base weights
            cold_arm = Arm("cold", "none", get_backend(cold_model, "torch"))
        except ModelLoadError as exc:
            log.warning("no cold model (%s): the verdict reports no cold contrast", exc)
    return Models(
        Arm("original", "none", pair.backend("original")),
        Arm("warm", "none", pair.backend("warm"), pair.warm_system),
        cold_arm,
    )


def read_unedited(folder: Path, expected: VerdictUneditedConfig) -> UneditedRows:
    """The rows written in ``folder``, refused (:class:`ConfigError` naming the fields) when the
    folder is unfinished or was measured with another config than ``expected`` (its ``out``
    aside)."""
    if not is_complete(folder, tuple(FILES.values())):
        raise ConfigError(
            f"unedited: {folder} is not a finished `interp verdict-unedited` folder (expected "
            f"{paths.META_FILE} and {', '.join(FILES.values())})"
        )
    meta = json.loads((folder / paths.META_FILE).read_text())
    found = meta.get("config", {})
    want = config_to_dict(dataclasses.replace(expected, out=None))
    differ = [
        f"{k}: folder {found.get(k)!r}, this run {v!r}"
        for k, v in want.items()
        if k != "out" and found.get(k) != v
    ]
    if differ:
        raise ConfigError(
            f"unedited: {folder / paths.META_FILE} was measured with another config ("
            + "; ".join(differ)
            + ")"
        )
    tables = {
        name: pd.read_csv(folder / file, dtype=_TEXT, keep_default_na=True)
        for name, file in FILES.items()
    }
    return UneditedRows(**tables)


def run_verdict_unedited(config: VerdictUneditedConfig, console: Console | None = None) -> int:
    """Measure and write the unedited rows (reused when the folder exists)."""
    console = console or Console()
    out = result_folder("verdict-unedited", config)
    if is_complete(out, tuple(FILES.values())):
        console.print(f"results exist in {out}; reusing them")
        return 0
    clock = PhaseClock(console.print)
    clock("loading the models and the split")
    derivation, evaluation = split_prompts(
        config.per_task_derivation, config.per_task_evaluation, config.seed
    )
    pair = load_pair(config.model, config.warm, **config.load_kwargs())
    models = protocol_models(pair, config.cold)
    rows = unedited_rows(models, derivation, evaluation, config.settings(), progress=clock)
    with writing_result(
        out,
        stage="verdict-unedited",
        config=config,
        warm=pair.warm_source,
        cold=config.cold if models.cold is not None else None,
        phase_seconds=clock.record(),
        split=split_meta(derivation, evaluation),
        **pair.original.provenance(),
    ) as tmp:
        for name, file in FILES.items():
            getattr(rows, name).to_csv(tmp / file, index=False)
    console.print(
        f"unedited rows: {len(rows.derivation)} derivation, {len(rows.cold_evaluation)} cold "
        f"evaluation, {len(rows.generation)} generation -> {out}"
    )
    return 0
