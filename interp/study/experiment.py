"""One figure (or table) of the study from its thin script in ``experiments/``.

``experiments/<nn>_<figure>.py`` calls :func:`main` with its figure id: the steps that produce
the figure's tables (and what they need) run or are reused, their output folders are printed
with the sha256 of each ``meta.json`` (the artifact hashes the figure is drawn from), and the
figure alone is written under ``<plots>/<preset>/<figure id>/``.
"""

from __future__ import annotations

import argparse
import fnmatch
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from interp import paths
from interp.artifacts import atomic_dir, provenance, write_json_atomic
from interp.figures.export import write_figures
from interp.figures.render import draw_figures
from interp.report.collect import collect_tables
from interp.study.pipeline import run_steps, select
from interp.study.presets import study_steps
from interp.study.steps import Step


def producers(steps: Sequence[Step], figure: str) -> list[str]:
    """Ids of the steps whose tables a figure is drawn from (``paper_*`` figures match by
    pattern)."""
    return [s.id for s in steps if any(fnmatch.fnmatch(figure, pattern) for pattern in s.figures)]


def table_of_contents(preset: str = "embedded") -> list[tuple[str, str, str, str]]:
    """(step, command, artifact files, figure ids) for every step of a preset."""
    steps = study_steps(preset)  # type: ignore[arg-type]
    return [
        (
            s.id,
            f"interp {' '.join(s.words)}",
            ", ".join(s.outputs) or "-",
            ", ".join(s.figures) or "-",
        )
        for s in steps
    ]


def main(figure: str, argv: Sequence[str] | None = None) -> int:
    """Run (or reuse) the steps behind ``figure`` and draw it; returns an exit status."""
    parser = argparse.ArgumentParser(description=f"figure {figure}: run its steps, then draw it")
    parser.add_argument("--preset", default="embedded", choices=("embedded", "tiny"))
    parser.add_argument(
        "--paper-data", default=None, help="the authors' warm_ai_2025 folder (paper_* figures)"
    )
    args = parser.parse_args(argv)
    console = Console()
    steps = study_steps(args.preset, args.paper_data)
    ids = producers(steps, figure)
    if not ids:
        console.print(f"no step of preset {args.preset} produces figure {figure!r}")
        return 2
    state = run_steps(select(steps, ids), paths.artifact_dir("study", args.preset), console)
    for step_id in ids:
        record = state.steps[step_id]
        console.print(
            f"input {step_id}: {record['out']} (meta.json sha256 {str(record['meta_sha256'])[:16]})"
        )
    with tempfile.TemporaryDirectory() as merge_dir:
        tables = collect_tables(tuple(state.steps[i]["out"] for i in ids), Path(merge_dir))
        drawn = draw_figures(tables, Path(args.paper_data) if args.paper_data else None)
    if figure not in drawn.figures:
        console.print(
            f"figure {figure} was not drawn: {drawn.skipped.get(figure, 'its tables are missing')}"
        )
        return 1
    out = paths.plots_root() / args.preset / figure
    with atomic_dir(out, replace=True) as tmp:
        exported = write_figures({figure: drawn.figures[figure]}, tmp)
        write_json_atomic(
            tmp / paths.META_FILE,
            provenance(
                stage="figure",
                figure=figure,
                preset=args.preset,
                inputs={
                    i: {
                        "folder": state.steps[i]["out"],
                        "meta_sha256": state.steps[i]["meta_sha256"],
                    }
                    for i in ids
                },
            ),
        )
    console.print(f"figure {figure}: {', '.join(str(out / p.name) for p in exported.files)}")
    return 0
