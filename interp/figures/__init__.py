"""Figures of the study: tidy result table -> plotly Figure, one shared theme, export.

Every figure function takes a tidy DataFrame (columns in :data:`interp.figures.tables.SCHEMAS`),
checks its columns (naming the missing and the found ones) and returns a Figure; none does I/O.
:func:`render_all` finds the tables under a results folder, draws what it can and writes
HTML (+ PNG/PDF through kaleido when Chromium exists).
"""

from interp.figures.directions import cosine_heatmap, stability
from interp.figures.export import ExportResult, write_figures
from interp.figures.paper import paper_benchmarks, paper_reliability, paper_warmth
from interp.figures.paper_data import load_benchmarks, load_reliability, load_sociot
from interp.figures.patching import patching_recovery
from interp.figures.probes import probe_auroc
from interp.figures.reliability import error_by_task, sycophancy_scatter
from interp.figures.render import FIGURES, DrawnFigures, draw_figures, find_tables, render_all
from interp.figures.sae import sae_decomposition, sae_interventions
from interp.figures.steering import dose_response
from interp.figures.tables import SCHEMAS, TableError, check_table, read_table
from interp.figures.theme import TEMPLATE, VARIANT_COLORS, register
from interp.figures.verdict import verdict_bars
from interp.figures.verdict_protocol import damage_figure, gap_figure, null_figure
from interp.figures.warmth import warmth_by_epoch

__all__ = [
    "FIGURES",
    "SCHEMAS",
    "TEMPLATE",
    "VARIANT_COLORS",
    "DrawnFigures",
    "ExportResult",
    "TableError",
    "check_table",
    "cosine_heatmap",
    "damage_figure",
    "dose_response",
    "draw_figures",
    "error_by_task",
    "find_tables",
    "gap_figure",
    "load_benchmarks",
    "load_reliability",
    "load_sociot",
    "null_figure",
    "paper_benchmarks",
    "paper_reliability",
    "paper_warmth",
    "patching_recovery",
    "probe_auroc",
    "read_table",
    "register",
    "render_all",
    "sae_decomposition",
    "sae_interventions",
    "stability",
    "sycophancy_scatter",
    "verdict_bars",
    "warmth_by_epoch",
    "write_figures",
]
