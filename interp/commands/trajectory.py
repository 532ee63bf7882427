"""``interp trajectory``: the fine-tune direction at every checkpoint epoch and how far the
activations move along the final one; joined with the run's warmth per epoch when present.

Writes ``<artifacts>/trajectory/<config hash>/trajectory.csv`` (epoch, layer, cosine_to_final,
shift), ``trajectory_warmth.csv`` (layer, measure, n_epochs, r) when the fine-tune run folder has
``warmth_by_epoch.csv``, and meta.json. Activations go through the shared caches (the base
model's cache is the one ``interp directions`` uses).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table

from interp import paths
from interp.artifacts import (
    result_folder,
    writing_result,
)
from interp.config import ConfigError, option
from interp.definitions.activations import ModelSource
from interp.definitions.contrasts import ModelSide
from interp.definitions.inputs import DefinitionInputs, eval_prompts
from interp.definitions.sources import prompt_rows
from interp.models import EMBEDDED, LoadOptions
from interp.sites import SITE_KINDS, Site
from interp.trajectory import (
    WARMTH_FILE,
    Checkpoint,
    find_checkpoints,
    parse_checkpoints,
    read_warmth,
    trajectory,
    warmth_correlation,
)


@dataclass(frozen=True)
class TrajectoryConfig(LoadOptions):
    """Track the fine-tune direction over a fine-tune run's checkpoints."""

    run: str | None = option(
        None,
        help=(
            "an `interp finetune` run: its folder or its name under <artifacts>/finetune "
            "(checkpoints/epoch-*/ adapters)"
        ),
        positional=True,
    )
    adapters: tuple[str, ...] = option(
        (), help="adapter folders instead of a run: PATH (epoch from its meta.json) or PATH=EPOCH"
    )
    model: str = option(EMBEDDED, help="the base model the adapters were trained on", flag="-m")
    tasks: tuple[str, ...] = option((), help="item tasks (none: the paper's four)")
    per_task: int = option(12, help="items per task (x 2 conditions x 3 templates prompts)")
    system: str | None = option(None, help="system prompt for every prompt")
    seed: int = option(0, help="seed of the statement assignment")
    site: str = option("resid_post", help="site kind")
    layers: tuple[int, ...] = option((), help="layers (none: every layer)")
    final_epoch: float | None = option(
        None, help="the checkpoint whose direction is 'final' (default: the last)"
    )
    batch_size: int = option(8, help="prompts per forward batch")
    backend: Literal["torch", "transformerlens", "nnsight"] = option("torch", help="hook backend")
    out: str | None = option(
        None, help="output folder (default: <artifacts>/trajectory/<config hash>)"
    )

    def __post_init__(self) -> None:
        if (self.run is None) == (not self.adapters):
            raise ConfigError(
                "give either a fine-tune run folder or --adapters, not both or neither"
            )
        if self.site not in SITE_KINDS:
            raise ConfigError(f"site must be one of {list(SITE_KINDS)}, found {self.site!r}")
        if self.per_task < 1 or self.batch_size < 1:
            raise ConfigError("per_task and batch_size must be >= 1")

    def run_folder(self) -> Path | None:
        """The fine-tune run folder (a path, or a run name under <artifacts>/finetune)."""
        if self.run is None:
            return None
        for candidate in (
            Path(self.run).expanduser(),
            paths.artifact_dir("finetune", self.run) if "/" not in self.run else None,
        ):
            if candidate is not None and candidate.is_dir():
                return candidate
        raise ConfigError(
            f"run: {self.run} is neither a folder nor a run under "
            f"{paths.artifacts_root() / 'finetune'}"
        )

    def checkpoints(self) -> list[Checkpoint]:
        run = self.run_folder()
        return find_checkpoints(run) if run is not None else parse_checkpoints(self.adapters)


def _activations(config: TrajectoryConfig, checkpoints: list[Checkpoint], console: Console):  # type: ignore[no-untyped-def]
    inputs = DefinitionInputs(
        model=config.model,
        tasks=config.tasks,
        per_task=config.per_task,
        seed=config.seed,
        system=config.system,
        batch_size=config.batch_size,
    )
    rowset = prompt_rows(eval_prompts(inputs), config.system)
    models = {}

    def read(adapter: Path | None) -> dict[int, object]:
        source = ModelSource(
            config.model,
            str(adapter) if adapter else None,
            backend=config.backend,
            load=config.load_kwargs(),
            batch_size=config.batch_size,
        )
        side: ModelSide = "adapter" if adapter else "base"
        cache = source.caches([(side, rowset)], [config.site])[(side, "prompts", config.site)]
        models[str(adapter) if adapter else "base"] = source.model_meta.get(side)
        n_layers = cache.manifest["request"]["model"]["n_layers"]
        layers = config.layers or tuple(range(n_layers))
        if max(layers) >= n_layers:
            raise ConfigError(f"layers: the model has {n_layers} layers, found {max(layers)}")
        return {layer: cache.load(Site(layer, config.site), "last")[:, 0] for layer in layers}  # type: ignore[arg-type]

    base = read(None)
    by_epoch = {}
    for ck in checkpoints:
        console.print(f"epoch {ck.epoch:g}: {ck.adapter}")
        by_epoch[ck.epoch] = read(ck.adapter)
    if 0.0 not in by_epoch:
        by_epoch[0.0] = base  # the original model is epoch 0
    return base, by_epoch, models


def run_trajectory(config: TrajectoryConfig, console: Console | None = None) -> int:
    console = console or Console()
    out = result_folder("trajectory", config)
    if (out / "trajectory.csv").is_file():
        console.print(f"trajectory exists in {out}; reusing it (delete the folder to recompute)")
    else:
        checkpoints = config.checkpoints()
        base, by_epoch, models = _activations(config, checkpoints, console)
        table = trajectory(base, by_epoch, config.final_epoch)  # type: ignore[arg-type]
        run = config.run_folder()
        warmth_file = run / WARMTH_FILE if run is not None else None
        corr = (
            warmth_correlation(table, read_warmth(warmth_file))
            if warmth_file and warmth_file.is_file()
            else None
        )
        with writing_result(
            out,
            stage="trajectory",
            config=config,
            models=models,
            checkpoints=[{"epoch": c.epoch, "adapter": str(c.adapter)} for c in checkpoints],
            warmth=str(warmth_file) if corr is not None else None,
        ) as tmp:
            table.to_csv(tmp / "trajectory.csv", index=False)
            if corr is not None:
                corr.to_csv(tmp / "trajectory_warmth.csv", index=False)
    table = pd.read_csv(out / "trajectory.csv")
    corr = (
        pd.read_csv(out / "trajectory_warmth.csv")
        if (out / "trajectory_warmth.csv").is_file()
        else None
    )
    console.print(trajectory_table(table, corr))
    console.print(f"trajectory tables: {out}")
    return 0


def trajectory_table(table: pd.DataFrame, corr: pd.DataFrame | None) -> Table:
    """Per layer: shift at each epoch (cosine to final in brackets); r with warmth if known."""
    epochs = sorted(table["epoch"].unique())
    t = Table(
        title=(
            "Shift along the final fine-tune direction (residual-norm units) [cosine of that "
            "epoch's direction to the final]"
        ),
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
        collapse_padding=True,
    )
    t.add_column("L", justify="right", no_wrap=True)
    for e in epochs:
        t.add_column(f"epoch {e:g}", justify="right", no_wrap=True)
    measures = list(dict.fromkeys(corr["measure"])) if corr is not None else []
    for m in measures:
        t.add_column(f"r(shift, {m})", justify="right")
    for layer, rows in table.groupby("layer", sort=True):
        by = rows.set_index("epoch")
        cells = [
            f"{by.at[e, 'shift']:+.3f}"
            + (
                ""
                if pd.isna(by.at[e, "cosine_to_final"])
                else f" [{by.at[e, 'cosine_to_final']:.2f}]"
            )
            for e in epochs
        ]
        if corr is not None:
            at = corr[corr["layer"] == layer].set_index("measure")["r"]
            cells += [f"{at[m]:+.2f}" if m in at.index else "" for m in measures]
        t.add_row(str(layer), *cells)
    return t
