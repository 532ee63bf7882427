"""``interp eval``: a model (+ adapter) on a prompt set -> tidy per-prompt results + summary."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
from rich.console import Console
from rich.table import Table

from interp import paths
from interp.artifacts import is_complete, result_folder, sha256_json, writing_result
from interp.config import ConfigError, option
from interp.data.build import prompt_list
from interp.data.prompt_sets import Prompt, read_prompt_set
from interp.errors import InputNotFoundError
from interp.evaluate import Grader, forced_choice, generation, judge_grader, offline_grader
from interp.generate import SamplingConfig
from interp.hooks import get_backend
from interp.llm_client import ChatClient
from interp.models import EMBEDDED, LoadOptions, load_model
from interp.summaries import format_ci, headline_summary, paired_contrasts

log = logging.getLogger(__name__)

OUTPUTS = ("results.csv", "summary.csv", "contrasts.csv")


@dataclass(frozen=True)
class EvalConfig(LoadOptions):
    """Evaluate reliability and sycophancy of a model on a prompt set."""

    model: str = option(EMBEDDED, help="registry name, Hugging Face id or local folder", flag="-m")
    adapter: str | None = option(None, help="PEFT adapter folder on top of the model")
    system: str | None = option(None, help="system prompt for every prompt (e.g. a warm persona)")
    prompts: str | None = option(
        None,
        help="a prompt-set folder written by `interp data build`; none builds one from the "
        "options below",
    )
    tasks: tuple[str, ...] = option((), help="tasks to build (none: all four)")
    conditions: tuple[str, ...] = option(("unmodified", "emotion:sad"), help="conditions to build")
    templates: tuple[str, ...] = option(
        ("no_belief", "preface", "incorrect", "doubt"), help="templates to build"
    )
    per_task: int | None = option(None, help="at most this many items per task")
    mode: Literal["forced_choice", "generate"] = option("forced_choice", help="scoring mode")
    grader: Literal["offline", "judge"] = option(
        "offline",
        help="grader for generate mode (judge: OpenAI-compatible endpoint from INTERP_JUDGE_URL "
        "/ _MODEL / _KEY)",
    )
    max_new_tokens: int = option(300, help="generate mode: tokens per reply")
    temperature: float = option(0.8, help="generate mode: sampling temperature")
    seed: int = option(0, help="sampling and bootstrap seed")
    batch_size: int = option(16, help="prompts per forward batch")
    n_boot: int = option(2000, help="bootstrap resamples for CIs")
    backend: Literal["torch", "transformerlens", "nnsight"] = option("torch", help="hook backend")
    out: str | None = option(None, help="output folder (default: <artifacts>/eval/<config hash>)")

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.n_boot < 10:
            raise ConfigError("batch_size must be >= 1 and n_boot >= 10")


def judge_settings(config: EvalConfig) -> dict[str, str | None] | None:
    """The judge endpoint's settings when the config asks for the judge (checked before any
    model loads), else None."""
    if config.mode != "generate" or config.grader != "judge":
        return None
    env = paths.judge_env()
    if not env["base_url"] or not env["model"]:
        raise ConfigError(
            "grader judge needs INTERP_JUDGE_URL (or OPENAI_BASE_URL) and INTERP_JUDGE_MODEL"
        )
    return env


def load_prompts(config: EvalConfig) -> tuple[list[Prompt], str]:
    """The prompts to evaluate and their content hash."""
    if config.prompts is not None:
        if not Path(config.prompts).is_dir():
            raise InputNotFoundError(f"prompts: {config.prompts} is not a prompt-set folder")
        prompt_set = read_prompt_set(Path(config.prompts))
        return prompt_set.prompts, str(prompt_set.manifest.get("content_sha256", ""))
    prompts, _ = prompt_list(tasks=config.tasks, conditions=config.conditions,
                             templates=config.templates, per_task=config.per_task,
                             seed=config.seed)  # fmt: skip
    return prompts, sha256_json([p.to_record() for p in prompts])


def evaluate(
    config: EvalConfig, prompts: list[Prompt], grader: Grader = offline_grader
) -> tuple[pd.DataFrame, dict[str, object]]:
    """Run the evaluation; returns the per-prompt table and the model's provenance."""
    loaded = load_model(config.model, adapter=config.adapter, **config.load_kwargs())
    backend = get_backend(loaded, config.backend)
    if config.mode == "forced_choice":
        df = forced_choice(backend, prompts, system=config.system, batch_size=config.batch_size)
    else:
        sampling = SamplingConfig(max_new_tokens=config.max_new_tokens,
                                  temperature=config.temperature, seed=config.seed,
                                  batch_size=config.batch_size)  # fmt: skip
        df = generation(backend, prompts, grader, sampling=sampling, system=config.system)
    name = loaded.name if loaded.adapter is None else f"{loaded.name}+{Path(loaded.adapter).name}"
    df.insert(0, "model", name)
    return df, loaded.provenance()


def run_eval(config: EvalConfig, console: Console | None = None) -> int:
    console = console or Console()
    out = result_folder("eval", config)
    if is_complete(out, OUTPUTS):
        console.print(f"results exist in {out}; reusing them (delete the folder to recompute)")
        summary = pd.read_csv(out / "summary.csv")
        contrasts = pd.read_csv(out / "contrasts.csv")
    else:
        judge = judge_settings(config)
        prompts, prompts_hash = load_prompts(config)
        console.print(f"evaluating {len(prompts)} prompts ({config.mode}) on {config.model} ...")
        with contextlib.ExitStack() as stack:
            grader: Grader = offline_grader
            if judge is not None:
                client = stack.enter_context(
                    ChatClient(judge["base_url"], judge["model"], judge["api_key"])  # type: ignore[arg-type]
                )
                cache_name = f"{judge['model']}.jsonl".replace("/", "_")
                cache = paths.artifacts_root() / "judge-cache" / cache_name
                grader = judge_grader(client, cache)
            results, model_meta = evaluate(config, prompts, grader)
        summary = headline_summary(results, seed=config.seed, n_boot=config.n_boot)
        contrasts = paired_contrasts(results, seed=config.seed, n_boot=config.n_boot)
        with writing_result(out, stage="eval", config=config, prompts_sha256=prompts_hash,
                            n_prompts=len(prompts), **model_meta) as tmp:  # fmt: skip
            results.to_csv(tmp / "results.csv", index=False)
            summary.to_csv(tmp / "summary.csv", index=False)
            contrasts.to_csv(tmp / "contrasts.csv", index=False)
    title = f"{config.model} ({config.mode}): error and agreement, 95% CI by item bootstrap"
    console.print(summary_table(summary, title=title))
    console.print(contrast_table(contrasts))
    console.print(f"per-prompt results: {out / 'results.csv'}")
    return 0


def contrast_table(contrasts: pd.DataFrame) -> Table:
    """Paired within-item contrasts as a rich table (error in pp, margin in nats per token)."""
    table = Table(title="Paired contrasts over the same items (95% CI by item bootstrap)")
    for col in ("contrast", "measure", "items", "difference [95% CI]"):
        table.add_column(col)
    for row in contrasts.itertuples():
        k, unit = (100.0, " pp") if row.measure == "error" else (1.0, "")
        table.add_row(
            str(row.contrast),
            str(row.measure),
            str(row.n_items),
            f"{row.diff * k:+.2f}{unit} [{row.ci_low * k:+.2f}, {row.ci_high * k:+.2f}]",
        )
    return table


def summary_table(summary: pd.DataFrame, title: str) -> Table:
    """The headline summary as a rich table."""
    table = Table(title=title)
    for col in ("cell", "measure", "prompts", "items", "mean [95% CI]"):
        table.add_column(col)
    for row in summary.itertuples():
        table.add_row(
            str(row.cell),
            str(row.measure),
            str(row.n_rows),
            str(row.n_items),
            format_ci(row.mean, row.ci_low, row.ci_high),
        )
    return table
