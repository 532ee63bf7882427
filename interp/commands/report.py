"""``interp report``: every figure and table of the study, from saved results only.

Reads the tidy CSVs (and their meta.json) from the result folders it is given, draws every
figure they allow (and the paper's own figures when ``--paper-data`` names the authors'
warm_ai_2025 folder), and writes one report folder: report.html (self-contained), report.md,
LaTeX tables for the appendix, the figures as HTML/PNG/PDF, and meta.json. It loads no model,
so it runs on a laptop from results computed elsewhere.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Console

from interp import paths
from interp.artifacts import is_complete
from interp.config import ConfigError, config_hash, config_to_dict, option
from interp.errors import InputNotFoundError
from interp.figures.render import draw_figures
from interp.report.collect import collect_tables, result_tables, verdict_text
from interp.report.write import REPORT_HTML, REPORT_MD, write_report


@dataclass(frozen=True)
class ReportConfig:
    """Draw every figure and write the report (HTML, Markdown, LaTeX) from result folders."""

    results: tuple[str, ...] = option(
        (),
        help="result folders to read (each searched for the study's tidy CSVs); one file name "
        "may appear in only one folder",
    )
    paper_data: str | None = option(
        None, help="the authors' warm_ai_2025 folder: redraw the paper's figures beside ours"
    )
    embed: Literal["plotly", "png"] = option(
        "plotly",
        help="report figures as interactive plotly (one inlined plotly.js) or PNG images",
    )
    out: str | None = option(None, help="report folder (default: <plots>/report-<hash>)")

    def __post_init__(self) -> None:
        if not self.results:
            raise ConfigError("results: give at least one result folder")


def report_folder(config: ReportConfig) -> Path:
    """``--out``, else ``<plots>/report-<config hash>``."""
    return Path(config.out) if config.out else paths.plots_root() / f"report-{config_hash(config)}"


def check_inputs(config: ReportConfig) -> Path | None:
    """Every input folder exists (checked before anything is drawn); the paper data folder."""
    for folder in config.results:
        if not Path(folder).is_dir():
            raise InputNotFoundError(f"results: {folder} is not a folder")
    if config.paper_data is None:
        return None
    paper = Path(config.paper_data)
    if not paper.is_dir():
        raise InputNotFoundError(
            f"paper_data: {paper} is not a folder (expected the authors' warm_ai_2025 folder)"
        )
    return paper


def run_report(config: ReportConfig, console: Console | None = None) -> int:
    console = console or Console()
    out = report_folder(config)
    if is_complete(out, (REPORT_HTML, REPORT_MD)):
        console.print(f"report exists: {out / REPORT_HTML} (reusing it)")
        return 0
    paper = check_inputs(config)
    with tempfile.TemporaryDirectory() as merge_dir:
        tables = collect_tables(config.results, Path(merge_dir))
        drawn = draw_figures(tables, paper)
        results = result_tables(tables)
        verdict = verdict_text(tables)
        write_report(
            results,
            drawn.figures,
            verdict,
            out,
            embed=config.embed,
            meta={"config": config_to_dict(config)},
        )
    skipped = ", ".join(f"{k} ({v})" for k, v in drawn.skipped.items()) or "none"
    console.print(f"{len(drawn.figures)} figures, {len(results)} tables; skipped: {skipped}")
    for sentence in verdict:
        console.print(f"[bold]verdict:[/] {sentence}")
    console.print(f"report: {out / REPORT_HTML} (Markdown twin report.md, LaTeX in tables/)")
    return 0
