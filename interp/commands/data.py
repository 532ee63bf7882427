"""``interp data build``: items x contexts x templates -> a prompt set on disk, named by hash."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich import box
from rich.console import Console
from rich.table import Table

from interp.config import ConfigError, config_to_dict, option
from interp.data.build import check_choices, prompt_list, source_items
from interp.data.contexts import CONDITIONS
from interp.data.items import ALL_TASKS, Item
from interp.data.pairs import validate_pairs
from interp.data.prompt_sets import Prompt, PromptSet, count_prompts, write_prompt_set
from interp.errors import InputNotFoundError
from interp.models import load_tokenizer
from interp.tiny_models import tiny_tokenizer


@dataclass(frozen=True)
class DataBuildConfig:
    """Build a prompt set (items x interpersonal contexts x templates) and write it to disk."""

    preset: Literal["embedded"] = option(
        "embedded", help="item set to use when no --source is given: the embedded items"
    )
    source: str | None = option(None, help="a data file to read items from instead of the preset")
    format: (
        Literal[
            "interp",
            "eval_data",
            "sycophancy_eval",
            "truthfulqa_csv",
            "medqa",
            "mask_csv",
            "anthropic_ab",
        ]
        | None
    ) = option(None, help="format of --source")
    task: str | None = option(None, help="task of the --source items where the format cannot tell")
    skip_invalid: bool = option(
        False, help="skip malformed --source records (counted and reported) instead of stopping"
    )
    tasks: tuple[str, ...] = option((), help="only these tasks; none given means all")
    conditions: tuple[str, ...] = option(
        (), help="only these conditions; none given means all nine"
    )
    templates: tuple[str, ...] = option(
        (), help="only these templates (no_belief preface incorrect doubt); none given means all"
    )
    variants: Literal["grid", "extended", "no_belief", "belief", "sad_vs_neutral"] = option(
        "grid", help="named variant set"
    )
    per_task: int | None = option(None, help="at most this many items per task (the first ones)")
    seed: int = option(0, help="seed of the statement assignment (the same for every model)")
    separator: Literal["blank-line", "space"] = option(
        "blank-line",
        help="what joins statement, preface and question ('space' is the paper's spacing; it "
        "fails pair validation for byte-level BPE tokenizers)",
    )
    contexts: str | None = option(
        None, help="a contexts JSON file instead of the embedded statements"
    )
    validate_with: str | None = option(
        None, help="tokenizer ('tiny', a registry name or a path) to validate matched pairs with"
    )
    out: str | None = option(
        None,
        help="output folder; none given means <artifacts>/prompts/<first 12 hex of the content "
        "hash>",
    )

    def __post_init__(self) -> None:
        if (self.source is None) != (self.format is None):
            raise ConfigError("--source and --format go together")
        if self.task is not None and self.task not in ALL_TASKS:
            raise ConfigError(f"task must be one of {list(ALL_TASKS)}, found {self.task!r}")
        check_choices(tasks=self.tasks, conditions=self.conditions, templates=self.templates,
                      variants=self.variants, per_task=self.per_task, seed=self.seed)  # fmt: skip


def check_inputs(config: DataBuildConfig) -> None:
    """The files the options name exist (checked before anything is read or loaded)."""
    for name, value in (("source", config.source), ("contexts", config.contexts)):
        if value is not None and not Path(value).is_file():
            raise InputNotFoundError(f"{name}: {value} is not a file")


def build(config: DataBuildConfig) -> tuple[list[Prompt], dict[str, object]]:
    """The prompts a config describes, and manifest fields describing their inputs."""
    items: list[Item] | None = None
    origin: dict[str, object] | None = None
    if config.source is not None:
        assert config.format is not None
        items, origin = source_items(Path(config.source), config.format, task=config.task,
                                     skip_invalid=config.skip_invalid)  # fmt: skip
    return prompt_list(
        tasks=config.tasks, conditions=config.conditions, templates=config.templates,
        per_task=config.per_task, seed=config.seed, separator=config.separator,
        variants=config.variants, contexts=Path(config.contexts) if config.contexts else None,
        items=items, origin=origin,
    )  # fmt: skip


def counts_table(prompts: list[Prompt]) -> Table:
    """A rich table of prompt counts: per task (bold, with its totals) one row per condition,
    one column per template."""
    counts = count_prompts(prompts)
    templates = [
        t for t in ("preface", "no_belief", "incorrect", "doubt") if any(k[2] == t for k in counts)
    ]
    table = Table(
        title="prompts per task x condition x template", box=box.SIMPLE_HEAD, pad_edge=False
    )
    table.add_column("task / condition", no_wrap=True, overflow="ellipsis")
    for col in (*templates, "total"):
        table.add_column(col, justify="right", no_wrap=True, min_width=len(col))

    def cells(task: str | None = None, cond: str | None = None) -> list[str]:
        row = [
            sum(n for (k_task, k_cond, k_t), n in counts.items()
                if k_t == t and task in (None, k_task) and cond in (None, k_cond))
            for t in templates
        ]  # fmt: skip
        return [*map(str, row), str(sum(row))]

    for task in dict.fromkeys(p.task for p in prompts):
        table.add_row(task, *cells(task), style="bold")
        for cond in CONDITIONS:
            if any(k[0] == task and k[1] == cond for k in counts):
                table.add_row(f"  {cond}", *cells(task, cond))
    table.add_section()
    table.add_row("all", *cells(), style="bold")
    return table


def tokenizer(name: str) -> Any:
    """The tokenizer pairs are validated with: ``tiny``, a registry name or a path."""
    return tiny_tokenizer() if name == "tiny" else load_tokenizer(name)


def run_data_build(config: DataBuildConfig, console: Console | None = None) -> int:
    """Build, optionally validate, and write a prompt set; print the counts table. Returns 0."""
    console = console or Console()
    check_inputs(config)
    prompts, extra = build(config)
    if config.validate_with:
        report = validate_pairs(tokenizer(config.validate_with), prompts, strict=True)
        extra["pair_validation"] = {
            "tokenizer": config.validate_with, "pairs": len(report.checks), "ok": report.ok,
        }  # fmt: skip
        console.print(report.summary())
    written: PromptSet = write_prompt_set(
        prompts, Path(config.out) if config.out else None, config=config_to_dict(config),
        extra_manifest=extra,
    )  # fmt: skip
    pairs = written.manifest["pairs"]
    console.print(counts_table(prompts))
    console.print(
        f"{len(prompts)} prompts of {written.manifest['n_items']} items; "
        f"{pairs['context']} context pairs, {pairs['belief']} belief pairs\n"
        f"prompt set sha256 {written.content_sha256}\nwritten to {written.path}"
    )
    return 0
