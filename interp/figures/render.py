"""Draw every figure whose input table exists, and write them (the figures stage's entry point).

``render_all(results_dir, out_dir, paper_data)`` finds the tidy CSVs anywhere under
``results_dir`` (or takes an explicit name -> path mapping), draws each figure whose tables are
there, lists the ones it skipped and why, and writes HTML (+ PNG/PDF) with a ``figures.json``
index and a ``meta.json`` into a new ``out_dir``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from interp import paths
from interp.artifacts import atomic_dir, provenance, sha256_file, write_json_atomic
from interp.config import ConfigError
from interp.figures import paper
from interp.figures import paper_data as authors
from interp.figures.directions import cosine_heatmap, stability
from interp.figures.export import CHROMIUM, STATIC_FORMATS, write_figures
from interp.figures.marginal_effects import marginal_effects
from interp.figures.patching import patching_recovery
from interp.figures.probes import probe_auroc
from interp.figures.reliability import error_by_task, sycophancy_scatter
from interp.figures.sae import sae_decomposition, sae_interventions
from interp.figures.steering import dose_response
from interp.figures.tables import SCHEMAS, read_table
from interp.figures.verdict import verdict_bars
from interp.figures.verdict_protocol import (
    damage_figure,
    gap_figure,
    has_arms,
    null_figure,
)
from interp.figures.warmth import warmth_by_epoch

log = logging.getLogger(__name__)

Tables = Mapping[str, pd.DataFrame]


def _has_agreement(t: Tables) -> bool:
    return bool((t["error_by_task"]["measure"].astype(str) == "agrees_with_user").any())


def _has_error_gap(t: Tables) -> bool:
    return bool((t["verdict_gap"]["measure"].astype(str) == "error").any())


# figure id -> (tables it needs, how to draw it, when it applies beyond having the tables)
FIGURES: dict[
    str, tuple[tuple[str, ...], Callable[[Tables], go.Figure], Callable[[Tables], bool] | None]
] = {
    "warmth_by_epoch": (
        ("warmth_by_epoch",),
        lambda t: warmth_by_epoch(t["warmth_by_epoch"]),
        None,
    ),
    "error_by_task": (("error_by_task",), lambda t: error_by_task(t["error_by_task"]), None),
    "agreement_by_task": (
        ("error_by_task",),
        lambda t: error_by_task(
            t["error_by_task"],
            measure="agrees_with_user",
            title="Agreement with a wrong belief by task and condition",
        ),
        _has_agreement,
    ),
    "sycophancy_scatter": (
        ("error_by_task",),
        lambda t: sycophancy_scatter(t["error_by_task"]),
        None,
    ),
    "marginal_effects": (
        ("marginal_effects",),
        lambda t: marginal_effects(t["marginal_effects"]),
        lambda t: bool(
            pd.to_numeric(t["marginal_effects"]["ame_pp"], errors="coerce").notna().any()
        ),
    ),
    "direction_cosines": (
        ("direction_cosines",),
        lambda t: cosine_heatmap(t["direction_cosines"]),
        None,
    ),
    "direction_stability": (
        ("direction_stability",),
        lambda t: stability(t["direction_stability"]),
        None,
    ),
    "probe_auroc": (("probe_auroc",), lambda t: probe_auroc(t["probe_auroc"]), None),
    "steering_dose_response": (
        ("steering_sweep",),
        lambda t: dose_response(t["steering_sweep"]),
        None,
    ),
    "verdict": (("verdict",), lambda t: verdict_bars(t["verdict"]), None),
    # the verdict protocol (interp verdict, step 17)
    "verdict_gap": (("verdict_gap",), lambda t: gap_figure(t["verdict_gap"]), _has_error_gap),
    "verdict_null": (("verdict_null",), lambda t: null_figure(t["verdict_null"]), None),
    "verdict_damage": (
        ("verdict_damage",),
        lambda t: damage_figure(t["verdict_damage"]),
        lambda t: has_arms(t["verdict_damage"]),
    ),
    "patching": (("patching",), lambda t: patching_recovery(t["patching"]), None),
    "sae_decomposition": (
        ("sae_decomposition",),
        lambda t: sae_decomposition(t["sae_decomposition"]),
        None,
    ),
    "sae_interventions": (
        ("sae_interventions",),
        lambda t: sae_interventions(t["sae_interventions"]),
        None,
    ),
}


@dataclass
class DrawnFigures:
    """Figures drawn from the tables found, the tables' files, and what was skipped (and why)."""

    figures: dict[str, go.Figure] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def find_tables(results_dir: Path) -> dict[str, Path]:
    """``<name>.csv`` for every known table name found anywhere under ``results_dir``.

    Two files with the same name are ambiguous: a ConfigError lists them (pass an explicit
    mapping instead).
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ConfigError(f"results folder {results_dir} does not exist")
    wanted = {f"{name}.csv": name for name in SCHEMAS}
    by_name: dict[str, list[Path]] = {name: [] for name in SCHEMAS}
    for folder, subdirs, files in os.walk(results_dir):
        subdirs[:] = sorted(
            d for d in subdirs if not d.startswith(".")
        )  # skip unfinished .partial folders
        for f in files:
            if f in wanted:
                by_name[wanted[f]].append(Path(folder) / f)
    found: dict[str, Path] = {}
    for name, hits in by_name.items():
        if len(hits) > 1:
            raise ConfigError(
                f"{len(hits)} files named {name}.csv under {results_dir}: "
                f"{[str(h) for h in hits]}; pass an explicit table mapping"
            )
        if hits:
            found[name] = hits[0]
    return found


def draw_figures(table_files: Mapping[str, Path], paper_dir: Path | None = None) -> DrawnFigures:
    """Read the tables and draw every figure they allow; paper figures when ``paper_dir`` is
    given."""
    unknown = sorted(set(table_files) - set(SCHEMAS))
    if unknown:
        raise ConfigError(f"unknown table name(s) {unknown}; known: {sorted(SCHEMAS)}")
    tables = {name: read_table(str(path), name) for name, path in table_files.items()}
    drawn = DrawnFigures(sources=dict(table_files))
    for fig_id, (needs, draw, applies) in FIGURES.items():
        missing = [n for n in needs if n not in tables]
        if missing:
            drawn.skipped[fig_id] = f"no {', '.join(m + '.csv' for m in missing)}"
        elif applies is not None and not applies(tables):
            drawn.skipped[fig_id] = "not applicable to the table's contents"
        else:
            drawn.figures[fig_id] = draw(tables)
    if paper_dir is None:
        drawn.skipped["paper_*"] = "no paper data folder given"
    else:
        _draw_paper(Path(paper_dir), tables, drawn)
    for fig_id, reason in drawn.skipped.items():
        log.info("figure %s skipped: %s", fig_id, reason)
    return drawn


def _draw_paper(root: Path, tables: Tables, drawn: DrawnFigures) -> None:
    reliability = authors.load_reliability(root)
    ours_error = tables.get("error_by_task")
    for amendment in ("warm", "cold", "warm-sysprompt"):
        drawn.figures[f"paper_reliability_{amendment}"] = paper.paper_reliability(
            reliability, amendment, ours=ours_error
        )
    drawn.figures["paper_warmth"] = paper.paper_warmth(
        authors.load_sociot(root), ours=tables.get("warmth_by_epoch")
    )
    drawn.figures["paper_benchmarks"] = paper.paper_benchmarks(authors.load_benchmarks(root))
    for name, rel in (
        *authors.RELIABILITY_FILES.items(),
        ("sociot", authors.SOCIOT_FILE),
        ("benchmarks", authors.BENCHMARK_FILE),
    ):
        drawn.sources[f"paper:{name}"] = root / rel


def render_all(
    results_dir: Path | None,
    out_dir: Path,
    paper_data: Path | None = None,
    *,
    tables: Mapping[str, Path] | None = None,
    formats: Sequence[str] = STATIC_FORMATS,
    chromium: Path | None = CHROMIUM,
) -> list[Path]:
    """Draw every figure whose input CSV exists under ``results_dir`` (or in ``tables``) and
    write them into the new folder ``out_dir`` (refused if it exists); the paper's figures too
    when ``paper_data`` names the authors' warm_ai_2025 folder.

    Writes ``<figure>.html`` (+ ``.png``/``.pdf`` when Chromium exists), ``figures.json`` (each
    figure's files and source tables, the skipped figures with reasons, export timing) and
    ``meta.json``. Returns the written files' final paths.
    """
    if tables is None:
        if results_dir is None:
            raise ConfigError("render_all needs results_dir or an explicit tables mapping")
        tables = find_tables(Path(results_dir))
    drawn = draw_figures(tables, paper_data)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        exported = write_figures(drawn.figures, tmp, formats=formats, chromium=chromium)
        index = {
            "figures": {
                f: sorted(p.name for p in exported.files if p.stem == f) for f in drawn.figures
            },
            "skipped": drawn.skipped,
            "static_skipped": exported.static_skipped,
            "static_seconds": round(exported.static_seconds, 2),
            "static_seconds_per_figure": round(exported.seconds_per_figure, 2),
        }
        write_json_atomic(tmp / "figures.json", index)
        sources = {
            k: {"path": str(p), "sha256": sha256_file(Path(p))} for k, p in drawn.sources.items()
        }
        write_json_atomic(
            tmp / paths.META_FILE,
            provenance(
                stage="figures",
                results_dir=str(results_dir) if results_dir else None,
                paper_data=str(paper_data) if paper_data else None,
                sources=sources,
            ),
        )
        written = [*exported.files, tmp / "figures.json", tmp / paths.META_FILE]
    return [out_dir / p.relative_to(tmp) for p in written]
