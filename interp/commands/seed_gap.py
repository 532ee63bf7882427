"""``interp seed-gap``: is the warm model's gap a property of the recipe or luck of one run?

The verdict protocol measures the gap of one warm and one cold fine-tune. This command scores
the original model and the warm and cold fine-tunes of several seeds (``interp finetune --seed S
--run-name embedded-warm-seedS``) on the evaluation split's four cells, and writes the gap table
of each seed (:func:`interp.causal.protocol.gap_table`, warm minus original and cold minus
original, paired by item, per task and pooled) in ``seed_gap.csv``, the seed in a column, with
``seed_gap.md``: one sentence per cell written from the table. Outside the default study: it
runs once, its table is committed under ``results/``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from rich.console import Console

from interp.artifacts import is_complete, result_folder, writing_result
from interp.causal.arms import Arm, score_prompts
from interp.causal.protocol import gap_table
from interp.causal.verdict_text import seed_sentences
from interp.commands.verdict_unedited import split_prompts
from interp.config import ConfigError, option
from interp.data.split import split_record
from interp.hooks import get_backend
from interp.models import EMBEDDED, LoadOptions, adapter_folder, load_model

OUTPUTS = ("seed_gap.csv", "seed_gap.md")


@dataclass(frozen=True)
class SeedGapConfig(LoadOptions):
    """Warm and cold fine-tunes of several seeds against the original, on the evaluation split."""

    model: str = option(EMBEDDED, help="base (original) model", flag="-m")
    warm: tuple[str, ...] = option(
        ("embedded-warm", "embedded-warm-seed1", "embedded-warm-seed2"),
        help="warm adapters or run names, one per seed (in seed order)",
    )
    cold: tuple[str, ...] = option(
        ("embedded-cold", "embedded-cold-seed1", "embedded-cold-seed2"),
        help="cold adapters or run names, one per seed (same order; may be empty)",
    )
    seeds: tuple[int, ...] = option((0, 1, 2), help="the seed of each adapter pair")
    per_task_evaluation: int = option(38, help="evaluation-split items per task (0: all)")
    batch_size: int = option(16, help="prompts per forward batch")
    n_boot: int = option(1000, help="bootstrap resamples")
    out: str | None = option(None, help="output folder (default: <artifacts>/seed-gap/<hash>)")

    def __post_init__(self) -> None:
        if len(self.warm) != len(self.seeds) or (self.cold and len(self.cold) != len(self.seeds)):
            raise ConfigError(
                f"one warm (and cold) adapter per seed: {len(self.seeds)} seeds, "
                f"{len(self.warm)} warm, {len(self.cold)} cold"
            )
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must differ, found {list(self.seeds)}")


def run_seed_gap(config: SeedGapConfig, console: Console | None = None) -> int:
    """Score the original and every seed's warm and cold model; write the per-seed gap table."""
    console = console or Console()
    out = result_folder("seed-gap", config)
    if is_complete(out, OUTPUTS):
        console.print(f"results exist in {out}; reusing them")
        console.print((out / "seed_gap.md").read_text())
        return 0
    folders = {
        "warm": [adapter_folder(w) for w in config.warm],
        "cold": [adapter_folder(c) for c in config.cold],
    }
    _, evaluation = split_prompts(2, config.per_task_evaluation, 0)
    tasks = {p.prompt_id: p.task for p in evaluation}
    original = Arm(
        "original", "none", get_backend(load_model(config.model, **config.load_kwargs()), "torch")
    )
    console.print(f"forced choice: original on {len(evaluation)} prompts")
    base = score_prompts(original, evaluation, config.batch_size)
    tables = []
    for i, seed in enumerate(config.seeds):
        frames = [base]
        for variant in ("warm", "cold"):
            if not folders[variant]:
                continue
            loaded = load_model(config.model, adapter=folders[variant][i], **config.load_kwargs())
            console.print(f"forced choice: {variant} seed {seed} on {len(evaluation)} prompts")
            arm = Arm(variant, "none", get_backend(loaded, "torch"))
            frames.append(score_prompts(arm, evaluation, config.batch_size))
        per_prompt = pd.concat(frames, ignore_index=True)
        table = gap_table(per_prompt, tasks, split="evaluation", n_boot=config.n_boot, seed=0)
        tables.append(table.assign(seed=seed))
    table = pd.concat(tables, ignore_index=True)
    text = seed_sentences(table)
    with writing_result(
        out,
        stage="seed-gap",
        config=config,
        adapters={k: [str(f) for f in v] for k, v in folders.items()},
        split={"evaluation": split_record("evaluation", sorted({p.item_id for p in evaluation}))},
    ) as tmp:
        table.to_csv(tmp / "seed_gap.csv", index=False)
        (tmp / "seed_gap.md").write_text(f"# The gap over fine-tune seeds\n\n{text}\n")
    console.print(text)
    console.print(f"wrote {out}")
    return 0
