"""``interp finetune``: warm / cold / distilled LoRA fine-tunes with warmth per checkpoint.

Writes ``<artifacts>/finetune/<run-name>/``: ``checkpoints/epoch-<e>/`` (PEFT adapters with
meta.json and resume state), ``warmth/`` (replies and scores per checkpoint),
``warmth_by_epoch.csv``, ``warmth_vs_original.csv`` and the run's ``meta.json`` (written last).
Killing the command and running it again resumes from the last checkpoint; a finished run is
reported from its files. Any checkpoint loads elsewhere as ``--adapter <run-name>[@<epoch>]``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from interp import paths
from interp.artifacts import provenance, write_json_atomic
from interp.config import ConfigError, config_to_dict, option
from interp.errors import InputNotFoundError
from interp.finetune import checkpoint_warmth as cw
from interp.finetune.distill import distill_conversations
from interp.finetune.examples import examples_hash, tokenize_all
from interp.finetune.original_warmth import original_warmth
from interp.finetune.presets import (
    WARM_SYSTEM_PROMPT,
    Preset,
    WarmthEvalPlan,
    get_preset,
)
from interp.finetune.sources import DataSpec, training_conversations
from interp.finetune.train import TrainConfig, train
from interp.generate import SamplingConfig
from interp.hooks import get_backend
from interp.models import DeviceOptions, LoadedModel, load_model
from interp.warmth.pairs import load_split
from interp.warmth.report import WarmthInstruments

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneConfig(DeviceOptions):
    """Fine-tune a model to be warm (or cold, or distil a warm system prompt) with LoRA, then
    measure warmth at every checkpoint on held-out requests. Options left unset take the
    preset's value."""

    preset: Literal[
        "embedded-warm", "embedded-cold", "embedded-distill", "paper-warm", "paper-cold"
    ] = option("embedded-warm", help="the recipe (model, data, hyperparameters)")
    run_name: str | None = option(
        None, help="run folder name under <artifacts>/finetune (default: the preset name)"
    )
    data: str | None = option(
        None,
        help=(
            "shipped | rewrite (endpoint rewrites of the shipped neutral replies) | sharegpt | "
            "sharegpt:PATH"
        ),
    )
    model: str | None = option(None, help="base model (registry name, HF id or folder)")
    learning_rate: float | None = option(None, help="override the preset's learning rate")
    epochs: float | None = option(None, help="override the preset's epochs")
    checkpoint_epochs: tuple[float, ...] = option(
        (), help="override the preset's checkpoint epochs"
    )
    effective_batch: int | None = option(None, help="override the preset's effective batch")
    micro_batch: int | None = option(None, help="override the preset's micro-batch")
    seed: int | None = option(None, help="override the preset's seed")
    per_type: int = option(50, help="sharegpt: conversations per query type")
    n_requests: int | None = option(
        None, help="held-out requests for warmth (default: the preset's)"
    )
    max_new_tokens: int | None = option(
        None, help="tokens per warmth reply (default: the preset's)"
    )
    sociot: Literal["final", "all", "none"] | None = option(
        None, help="checkpoints SocioT scores (default: the preset's)"
    )
    skip_warmth: bool = option(False, help="train only")
    dtype: Literal["float32", "bfloat16", "float16"] | None = option(
        None,
        help="weights dtype (default: the preset's; the 4-bit compute dtype with --load-in-4bit)",
    )
    gradient_checkpointing: bool | None = option(
        None,
        help="recompute activations in the backward pass (less memory, about a third more "
        "compute; default: the preset's, on in the paper presets)",
    )

    def __post_init__(self) -> None:
        get_preset(self.preset)
        if self.data is not None:
            DataSpec.parse(self.data)
        if self.n_requests is not None and self.n_requests < 1:
            raise ConfigError(f"n_requests must be >= 1, found {self.n_requests}")


def resolve(config: FinetuneConfig) -> tuple[Preset, TrainConfig, WarmthEvalPlan]:
    """The preset with the command-line overrides applied."""
    preset = get_preset(config.preset)
    overrides: dict[str, Any] = {
        k: getattr(config, k)
        for k in (
            "learning_rate",
            "epochs",
            "effective_batch",
            "micro_batch",
            "seed",
            "gradient_checkpointing",
        )
        if getattr(config, k) is not None
    }
    if config.checkpoint_epochs:
        overrides["checkpoint_epochs"] = config.checkpoint_epochs
    tcfg = dataclasses.replace(preset.train, **overrides)
    plan = dataclasses.replace(
        preset.warmth,
        n_requests=config.n_requests if config.n_requests is not None else preset.warmth.n_requests,
        max_new_tokens=config.max_new_tokens or preset.warmth.max_new_tokens,
        sociot_epochs=config.sociot or preset.warmth.sociot_epochs,
    )
    preset = dataclasses.replace(
        preset,
        model=config.model or preset.model,
        data=config.data or preset.data,
        dtype=config.dtype or preset.dtype,
    )
    return preset, tcfg, plan


def check_inputs(preset: Preset) -> None:
    """Files the options name exist (checked before the model loads)."""
    spec = DataSpec.parse(preset.data)
    if spec.path is not None and not Path(spec.path).is_file():
        raise InputNotFoundError(f"data: no ShareGPT file at {spec.path}")


def run_finetune(config: FinetuneConfig, console: Console | None = None) -> int:
    console = console or Console()
    preset, tcfg, plan = resolve(config)
    run_dir = paths.artifact_dir("finetune", config.run_name or preset.name)
    if (run_dir / paths.META_FILE).is_file():
        console.print(f"run {run_dir} is finished; reporting it (delete the folder to retrain)")
        _print_tables(console, run_dir)
        return 0
    check_inputs(preset)
    t_start = time.perf_counter()
    loaded = load_model(
        preset.model,
        dtype=preset.dtype,  # type: ignore[arg-type]
        **config.load_kwargs(),
    )
    split = load_split()
    convs = training_conversations(
        DataSpec.parse(preset.data),
        preset.variant,
        split.train,
        run_dir,
        per_type=config.per_type,
        seed=tcfg.seed,
        distill=_teacher(loaded, run_dir, console),
    )
    examples = tokenize_all(loaded.tokenizer, convs, tcfg.max_length)
    data_hash = examples_hash(examples)
    meta = {
        "preset": preset.name,
        "variant": preset.variant,
        "data": preset.data,
        "train_data_hash": data_hash,
        "n_examples": len(examples),
        "base_model": preset.model,
    }
    console.print(
        f"{preset.name}: {len(examples)} {preset.variant} examples "
        f"({sum(e.n_tokens for e in examples)} tokens) on {preset.model} -> {run_dir}"
    )
    with _progress(console) as progress:
        task = progress.add_task("training", total=None)
        model, result = train(
            loaded,
            examples,
            tcfg,
            run_dir,
            meta=meta,
            on_step=lambda s, n, loss: progress.update(
                task, completed=s, total=n, description=f"training (loss {loss:.3f})"
            ),
        )
    console.print(
        f"trained {result.steps_run} steps (resumed at step {result.resumed_from_step}): "
        f"{result.tokens_per_s:.0f} tokens/s"
    )
    t_warm = time.perf_counter()
    if not config.skip_warmth:
        _measure_warmth(
            model,
            loaded,
            result.checkpoints,
            split.held_out,
            plan,
            preset.variant,
            run_dir,
            console,
            # a checkpoint answers through a merged copy (--merge-adapters), not over 4-bit
            merged=config.merge_adapters and not config.load_in_4bit,
        )
    final = max(result.checkpoints)
    write_json_atomic(run_dir / paths.META_FILE, provenance(
        stage="finetune", config=config_to_dict(config),
        train_config=config_to_dict(tcfg), warmth_plan=dataclasses.asdict(plan), **meta,
        base_weights_hash=loaded.weights_hash,
        checkpoints={str(e): str(p.name) for e, p in sorted(result.checkpoints.items())},
        final_checkpoint=result.checkpoints[final].name, final_epoch=final,
        steps_run=result.steps_run, resumed_from_step=result.resumed_from_step,
        tokens_trained=result.tokens,
        train_seconds=result.train_seconds, tokens_per_s=result.tokens_per_s, losses=result.losses,
        warmth_seconds=time.perf_counter() - t_warm, total_seconds=time.perf_counter() - t_start,
    ))  # fmt: skip
    if not config.skip_warmth:
        _print_tables(console, run_dir)
    console.print(
        f"done in {time.perf_counter() - t_start:.0f} s; load it anywhere with --adapter "
        f"{run_dir.name} (or {run_dir.name}@<epoch>)"
    )
    return 0


def _teacher(loaded: LoadedModel, run_dir: Path, console: Console) -> Any:
    def distill(requests: Any) -> Any:
        console.print(
            f"distilling: {len(requests)} teacher replies under the warm system prompt ..."
        )
        return distill_conversations(
            get_backend(loaded, "torch"),
            requests,
            WARM_SYSTEM_PROMPT,
            SamplingConfig(max_new_tokens=96, temperature=0.0, batch_size=16),
            run_dir / "distill_targets.jsonl",
        )

    return distill


def _measure_warmth(
    model: Any,
    loaded: LoadedModel,
    checkpoints: dict[float, Path],
    held_out: Any,
    plan: WarmthEvalPlan,
    variant: str,
    run_dir: Path,
    console: Console,
    merged: bool,
) -> None:
    if (run_dir / "warmth_by_epoch.csv").is_file():  # measured before a kill; keep it
        return
    requests = cw.select_requests(held_out, plan.n_requests)
    console.print(
        f"warmth: greedy replies ({plan.max_new_tokens} tokens) to {len(requests)} held-out "
        f"requests at epoch 0 and {len(checkpoints)} checkpoints ..."
    )
    scorer = LoadedModel(loaded.name, model.get_base_model(), loaded.tokenizer, loaded.weights_hash)
    instruments = WarmthInstruments.load(scorer if plan.sociot_epochs != "none" else None)
    sociot_epochs = cw.sociot_epochs_for(plan, sorted(checkpoints))
    # epoch 0 is the original model, the same for every run of this base model: measured once
    original_replies, original_scores, reused = original_warmth(
        model, loaded, requests, plan, instruments, sociot=0.0 in sociot_epochs
    )
    console.print(
        "  epoch 0 (the original model): "
        + ("reused from another run's measurement" if reused else "measured, kept for other runs")
    )
    replies = cw.checkpoint_replies(
        model,
        loaded,
        checkpoints,
        requests,
        plan,
        run_dir / "warmth",
        on_epoch=lambda e: console.print(f"  replies at epoch {e} written"),
        original=original_replies,
        merged=merged,
    )
    with model.disable_adapter():  # SocioT scores with the original model
        scores = cw.score_replies(
            replies[replies["epoch"] != 0.0], instruments, [e for e in sociot_epochs if e]
        )
    scores = pd.concat([original_scores, scores], ignore_index=True)
    by_epoch, vs = cw.warmth_tables(scores, variant)
    cw.write_tables(run_dir, by_epoch, vs, scores)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TimeElapsedColumn(),
        console=console,
    )


def _print_tables(console: Console, run_dir: Path) -> None:
    by_epoch_f, vs_f = run_dir / "warmth_by_epoch.csv", run_dir / "warmth_vs_original.csv"
    if not by_epoch_f.is_file():
        console.print("no warmth tables in this run (trained with --skip-warmth)")
        return
    table = Table(title=f"{run_dir.name}: warmth per checkpoint (held-out requests, 95% CI)")
    for col in ("variant", "epoch", "instrument", "mean [95% CI]", "n"):
        table.add_column(col)
    for r in pd.read_csv(by_epoch_f).itertuples():
        table.add_row(
            str(r.variant),
            f"{r.epoch:g}",
            str(r.instrument),
            f"{r.mean:.4f} [{r.ci_low:.4f}, {r.ci_high:.4f}]",
            str(r.n),
        )
    console.print(table)
    table = Table(title="paired difference, checkpoint minus original (same requests, 95% CI)")
    for col in ("epoch", "instrument", "diff [95% CI]", "win rate", "n"):
        table.add_column(col)
    for r in pd.read_csv(vs_f).itertuples():
        table.add_row(
            f"{r.epoch:g}",
            str(r.instrument),
            f"{r.diff:+.4f} [{r.ci_low:+.4f}, {r.ci_high:+.4f}]",
            f"{r.win_rate:.2f}",
            str(r.n),
        )
    console.print(table)
