"""``interp report``: every figure and table of the study, from saved results only.

Reads the tidy CSVs (and their meta.json) from the result folders it is given, draws every
figure they allow (and the paper's own figures when ``--paper-data`` names the authors'
warm_ai_2025 folder), and writes one report folder: report.html (self-contained), report.md,
LaTeX tables for the appendix, the figures as HTML/PNG/PDF, and meta.json. It loads no model,
so it runs on a laptop from results computed elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Console

from interp import paths
from interp.artifacts import sha256_json
from interp.config import ConfigError, config_to_dict, option


@dataclass(frozen=True)
class ReportConfig:
    """Draw every figure and write the report (HTML, Markdown, LaTeX) from result folders."""

    results: tuple[str, ...] = option((), help="result folders to read (each searched for the study's tidy CSVs); one file name may appear in only one folder")
    paper_data: str | None = option(None, help="the authors' warm_ai_2025 folder: redraw the paper's figures beside ours")
    embed: Literal["plotly", "png"] = option("plotly", help="report figures as interactive plotly (one inlined plotly.js) or PNG images")
    out: str | None = option(None, help="report folder (default: <plots>/report-<hash>)")

    def __post_init__(self) -> None:
        if not self.results:
            raise ConfigError("results: give at least one result folder")


MERGEABLE = ("warmth_by_epoch", "error_by_task")
"""Tables with a ``variant`` column: one per run (warm, cold ...) is stacked into one table."""


def collect_tables(folders: tuple[str, ...], merge_dir: Path | None = None) -> dict[str, Path]:
    """Known table name -> CSV across the folders.

    A name found in several folders is an error, except the per-variant tables of
    :data:`MERGEABLE`, which are stacked (rows repeated across runs, like the original model's
    epoch 0, kept once) into ``merge_dir``.
    """
    import pandas as pd

    from interp.figures.render import find_tables

    found: dict[str, list[Path]] = {}
    for folder in folders:
        path = Path(folder)
        if not path.is_dir():
            raise ConfigError(f"results: {folder} is not a folder")
        for name, csv in find_tables(path).items():
            found.setdefault(name, []).append(csv)
    out: dict[str, Path] = {}
    for name, csvs in found.items():
        if len(csvs) == 1:
            out[name] = csvs[0]
        elif name in MERGEABLE and merge_dir is not None:
            merged = pd.concat([pd.read_csv(c) for c in csvs], ignore_index=True)
            keys = [c for c in merged.columns if c not in ("mean", "ci_low", "ci_high", "n", "n_items")]
            merged = merged.drop_duplicates(subset=keys, keep="first")
            merge_dir.mkdir(parents=True, exist_ok=True)
            out[name] = merge_dir / f"{name}.csv"
            merged.to_csv(out[name], index=False)
        else:
            raise ConfigError(f"{name}.csv is in several result folders: {', '.join(map(str, csvs))}")
    return out


def verdict_text(tables: dict[str, Path]) -> list[str]:
    """The verdict sentences: the verdict step's verdict.md when present, else built from verdict.csv."""
    from interp.figures.tables import read_table
    from interp.report.verdict import verdict_sentences

    if "verdict" not in tables:
        return ["No verdict: the ablation step has not run, so there is no causal result yet."]
    md = tables["verdict"].parent / "verdict.md"
    if md.is_file():
        lines = [line.strip() for line in md.read_text().splitlines() if line.strip() and not line.startswith("#")]
        if lines:
            return lines
    return verdict_sentences(read_table(str(tables["verdict"]), "verdict"))


def run_report(config: ReportConfig, console: Console | None = None) -> int:
    import tempfile

    console = console or Console()
    out = Path(config.out) if config.out else paths.plots_root() / f"report-{sha256_json(config_to_dict(config))[:12]}"
    if (out / "report.html").is_file():
        console.print(f"report exists: {out / 'report.html'} (reusing it)")
        return 0
    with tempfile.TemporaryDirectory() as merge_dir:
        return _write(config, collect_tables(config.results, Path(merge_dir)), out, console)


def _write(config: ReportConfig, tables: dict[str, Path], out: Path, console: Console) -> int:
    from interp.figures.render import draw_figures
    from interp.report.results import ResultTable, nearest_meta
    from interp.report.write import write_report

    paper = Path(config.paper_data) if config.paper_data else None
    if paper is not None and not paper.is_dir():
        raise ConfigError(f"paper_data: {paper} is not a folder (expected the authors' warm_ai_2025 folder)")
    drawn = draw_figures(tables, paper)
    from interp.figures.tables import read_table

    results = {name: ResultTable(read_table(str(csv), name), nearest_meta(csv, csv.parent.parent), csv) for name, csv in tables.items()}
    verdict = verdict_text(tables)
    write_report(results, drawn.figures, verdict, out, embed=config.embed)
    console.print(f"{len(drawn.figures)} figures, {len(results)} tables; skipped: {', '.join(f'{k} ({v})' for k, v in drawn.skipped.items()) or 'none'}")
    for sentence in verdict:
        console.print(f"[bold]verdict:[/] {sentence}")
    console.print(f"report: {out / 'report.html'} (Markdown twin report.md, LaTeX in tables/)")
    return 0
