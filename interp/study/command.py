"""``interp study``: run every step of a preset in order, reusing what is done, then render.

``interp study --preset embedded`` is the README's main command. ``--dry-run`` prints the plan
(step -> command -> artifact -> figures) without running anything; for ``--preset paper`` it
also prints sizes and the GPU-hour estimate (calibrated with ``--throughput``).
``interp study --preset paper --model ID`` runs the paper's recipe on that model from local weights
(``--device``, ``--dtype``, ``--device-map``, ``--load-in-4bit`` reach every step), resumable in
``<artifacts>/study/paper-<model>``. ``--only 05 09`` runs those steps and what they need.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from rich.console import Console
from rich.table import Table

from interp import paths
from interp.config import ConfigError, option
from interp.models import LoadOptions
from interp.study.paper_plan import calibrate, plan
from interp.study.parallel import run_steps_parallel
from interp.study.pipeline import plan_table, run_steps, select
from interp.study.presets import run_slug, study_steps


@dataclass(frozen=True)
class StudyConfig:
    """Run the study on a preset (embedded: SmolLM2-135M on the CPU; tiny: CI smoke; paper: the
    paper's recipe on --model, on GPUs)."""

    preset: Literal["embedded", "embedded-full-verdict", "tiny", "paper"] = option(
        "embedded", help="which study preset to run"
    )
    model: str | None = option(
        None,
        help="paper preset: the base model (registry name, Hugging Face id in the local cache, "
        "or a local folder)",
        flag="-m",
    )
    dry_run: bool = option(
        False, help="print the plan (and for paper the sizes and GPU hours) and stop"
    )
    only: tuple[str, ...] = option(
        (), help="run only these steps (ids or numbers) and the steps they need"
    )
    paper_data: str | None = option(
        None,
        help="folder of the authors' published data (warm_ai_2025) to redraw the paper's "
        "figures beside ours",
    )
    device: str | None = option(
        None, help="torch device of every step (default: cuda for paper, cpu otherwise)"
    )
    dtype: Literal["float32", "bfloat16", "float16"] | None = option(
        None, help="weights dtype of every step (default: bfloat16 for paper, float32 otherwise)"
    )
    device_map: str | None = option(
        None,
        help="accelerate device map of every step: auto spreads each model over the visible "
        "GPUs, none keeps it on --device (default: auto for paper when several GPUs are "
        "visible, else none)",
    )
    load_in_4bit: bool = option(False, help="NF4 4-bit weights in every step (QLoRA; CUDA)")
    throughput: str | None = option(
        None,
        help="paper: a `benchmarks/gpu_check.py --out` TSV whose measured tokens/s calibrate "
        "the GPU-hour estimate (default: assumed utilisations)",
    )
    out: str | None = option(
        None, help="study folder (default: <artifacts>/study/<preset>, paper: paper-<model>)"
    )
    jobs: int = option(
        0,
        help="steps run at once, each in a process of its own with cores/jobs threads "
        "(0: two for the embedded presets on a CPU with two or more cores, else one)",
    )

    def __post_init__(self) -> None:
        if self.jobs < 0:
            raise ConfigError(f"jobs must be >= 0 (0: chosen for the machine), found {self.jobs}")
        if self.preset != "paper" and self.model is not None:
            raise ConfigError(
                f"--model is for the paper preset; preset {self.preset} fixes its model"
            )
        if self.preset == "paper" and self.model is None and not self.dry_run:
            raise ConfigError(
                "the paper preset needs --model (a registry name such as "
                "llama-3.1-8b-instruct, a Hugging Face id in the local cache, or a local folder)"
            )


def load_options(config: StudyConfig, gpus: int | None = None) -> LoadOptions | None:
    """Where every step loads its model: None keeps each command's defaults (CPU, float32) for
    the non-paper presets when nothing was given; ``gpus``: visible GPUs (default: torch's
    count), which decides the paper preset's default device map."""
    given = (config.device, config.dtype, config.device_map) != (None, None, None)
    if config.preset != "paper" and not given and not config.load_in_4bit:
        return None
    paper = config.preset == "paper"
    device_map = config.device_map
    if device_map is None and paper:
        gpus = torch.cuda.device_count() if gpus is None else gpus
        device_map = "auto" if gpus > 1 else None
    return LoadOptions(
        device=config.device or ("cuda" if paper else "cpu"),
        dtype=config.dtype or ("bfloat16" if paper else "float32"),
        device_map=None if device_map == "none" else device_map,
        load_in_4bit=config.load_in_4bit,
        # the paper's 8B-70B pairs keep one copy of the weights (two may not fit the GPUs)
        merge_adapters=not paper,
    )


def jobs_for(config: StudyConfig, load: LoadOptions | None, cores: int | None = None) -> int:
    """How many steps run at once: ``--jobs`` when given; else two for the embedded presets on
    the CPU of a machine with two or more ``cores`` (default: the machine's), one otherwise (a
    GPU holds one step's model; the tiny smoke preset's steps are too short to pay for a
    process each)."""
    if config.jobs:
        return config.jobs
    if cores is None:
        cores = os.cpu_count() or 1
    on_cpu = load is None or load.device == "cpu"
    embedded = config.preset in ("embedded", "embedded-full-verdict")
    return 2 if embedded and on_cpu and cores >= 2 else 1


def study_folder(config: StudyConfig) -> Path:
    """The study folder: ``--out``, else per preset (per model for paper; a preset of
    :data:`interp.paths.STUDY_FOLDER_OF` in the folder of the preset it extends)."""
    if config.out:
        return Path(config.out)
    if config.preset == "paper" and config.model is not None:
        return paths.artifact_dir("study", f"paper-{run_slug(config.model)}")
    return paths.artifact_dir("study", paths.STUDY_FOLDER_OF.get(config.preset, config.preset))


def study_state_file(config: StudyConfig) -> str:
    """This preset's state file in its folder (:func:`interp.paths.study_state_file`)."""
    return paths.study_state_file(config.preset)


def paper_plan_table(throughput: str | None = None) -> Table:
    """The paper plan with one column per model (narrow terminals keep every number); the
    utilisations are calibrated from ``throughput`` (gpu_check rows) when given."""
    calibration = calibrate(rows_file=Path(throughput) if throughput else None)
    df = plan(calibration.workload)
    measured = bool(calibration.sources)
    kind = "partly calibrated estimate" if measured else "estimate from assumed utilisation"
    table = Table(title=f"paper preset: sizes and H100 GPU hours, {kind} (nothing loaded)")
    table.add_column("quantity")
    for name in df["model"]:
        table.add_column(name.replace("-instruct", "").replace("-2409", ""), justify="right")
    for col in df.columns[1:]:
        table.add_row(col, *[str(v) for v in df[col]])
    table.caption = (
        f"estimate; assumptions: {calibration.workload}; utilisation: {calibration.describe()}; "
        f"total {df['gpu_hours_total'].sum():.0f} GPU hours"
    )
    return table


def run_study(config: StudyConfig, console: Console | None = None) -> int:
    console = console or Console()
    if config.preset == "paper":
        console.print(paper_plan_table(config.throughput))
        if config.model is None:  # only a dry run gets here (__post_init__)
            console.print("add --model to plan (or run) the paper preset's steps on one model")
            return 0
    load = load_options(config)
    folder = study_folder(config)
    steps = select(
        study_steps(config.preset, config.paper_data, model=config.model, load=load), config.only
    )
    if config.dry_run:
        title = f"study plan: preset {config.preset} ({folder})"
        if load is not None:
            title += f"; every step on {load.device_map or load.device} in {load.dtype}" + (
                " (4-bit)" if load.load_in_4bit else ""
            )
        console.print(plan_table(steps, folder, title=title, state_file=study_state_file(config)))
        return 0
    jobs = jobs_for(config, load)
    if jobs > 1:
        run_steps_parallel(steps, folder, console, study_state_file(config), jobs=jobs)
    else:
        run_steps(steps, folder, console, study_state_file(config))
    return 0
