"""``interp study``: run every step of a preset in order, reusing what is done, then render.

``interp study --preset embedded`` is the README's main command. ``--dry-run`` prints the plan
(step -> command -> artifact -> figures) without running anything; for ``--preset paper`` it
also prints sizes and estimated GPU hours. ``--only 05 09`` runs those steps and what they need.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.table import Table

from interp import paths
from interp.config import option
from interp.study.paper_plan import PaperWorkload, plan
from interp.study.pipeline import plan_table, run_steps, select
from interp.study.presets import study_steps


@dataclass(frozen=True)
class StudyConfig:
    """Run the study on a preset (embedded: SmolLM2-135M on the CPU; tiny: CI smoke; paper:
    plan only)."""

    preset: Literal["embedded", "embedded-full-verdict", "tiny", "paper"] = option(
        "embedded", help="which study preset to run"
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
    out: str | None = option(None, help="study folder (default: <artifacts>/study/<preset>)")


def paper_plan_table() -> Table:
    """The paper plan with one column per model (narrow terminals keep every number)."""
    df = plan()
    table = Table(title="paper preset: sizes and estimated H100 GPU hours (nothing loaded)")
    table.add_column("quantity")
    for name in df["model"]:
        table.add_column(name.replace("-instruct", "").replace("-2409", ""), justify="right")
    for col in df.columns[1:]:
        table.add_row(col, *[str(v) for v in df[col]])
    table.caption = (
        f"assumptions: {PaperWorkload()}; total {df['gpu_hours_total'].sum():.0f} GPU hours"
    )
    return table


def run_study(config: StudyConfig, console: Console | None = None) -> int:
    console = console or Console()
    if config.preset == "paper":
        console.print(paper_plan_table())
        if not config.dry_run:
            console.print(
                "the paper preset needs GPUs and the models' weights: run its steps on such a "
                "machine (the plan above); here only --dry-run is available"
            )
            return 2
        return 0
    folder = Path(config.out) if config.out else paths.artifact_dir("study", config.preset)
    steps = select(study_steps(config.preset, config.paper_data), config.only)
    if config.dry_run:
        title = f"study plan: preset {config.preset} ({folder})"
        console.print(plan_table(steps, folder, title=title))
        return 0
    run_steps(steps, folder, console)
    return 0
