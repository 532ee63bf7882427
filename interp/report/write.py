"""Write the report folder: report.html (self-contained), report.md, LaTeX tables, figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from interp import paths
from interp.artifacts import atomic_dir, provenance, sha256_file, write_json_atomic
from interp.config import ConfigError
from interp.figures.export import CHROMIUM, STATIC_FORMATS, write_figures
from interp.report.html import Embed, html_report
from interp.report.latex import booktabs_table
from interp.report.markdown import markdown_report
from interp.report.provenance import provenance_table
from interp.report.results import ResultTable, as_result_tables

REPORT_HTML = "report.html"
REPORT_MD = "report.md"
APPENDIX_TEX = "appendix.tex"


def write_report(
    results: Mapping[str, ResultTable | tuple[Any, ...]],
    figures: Mapping[str, go.Figure],
    verdict_text: str | Sequence[str],
    out_dir: Path,
    *,
    title: str = "Why warm models become sycophantic: results",
    embed: Embed = "plotly",
    formats: Sequence[str] = STATIC_FORMATS,
    chromium: Path | None = CHROMIUM,
    latex_max_rows: int | None = 60,
    meta: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write the report into the new folder ``out_dir`` (refused if it exists); returns its files.

    ``results``: name -> (tidy DataFrame, meta.json dict) or :class:`ResultTable`; every table is
    shown (HTML, Markdown) and written as booktabs LaTeX (``tables/<name>.tex``, all of them
    ``\\input`` by ``appendix.tex``). ``figures``: name -> Figure, exported to ``figures/``
    (HTML, and PNG/PDF when Chromium exists). ``verdict_text``: the verdict sentence(s) with
    their numbers (see :func:`interp.report.verdict.verdict_sentences`). The provenance
    section lists each result's command, config hash, model and data hashes and git commit.
    ``meta`` adds fields to the report's meta.json (the command's config, say).
    """
    tables = as_result_tables(results)
    verdict = [verdict_text] if isinstance(verdict_text, str) else list(verdict_text)
    if not any(s.strip() for s in verdict):
        raise ConfigError("write_report: the verdict text is empty")
    prov = provenance_table(tables)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        exported = write_figures(figures, tmp / "figures", formats=formats, chromium=chromium)
        notes = [exported.static_skipped] if exported.static_skipped else []
        pngs = {p.stem: p for p in exported.files if p.suffix == ".png"}
        frames = {name: t.frame for name, t in tables.items()}
        (tmp / REPORT_HTML).write_text(
            html_report(title, verdict, figures, frames, prov, embed=embed, pngs=pngs, notes=notes)
        )
        links = {
            n: (
                str(f.layout.title.text or n),
                f"figures/{n}.png" if n in pngs else f"figures/{n}.html",
            )
            for n, f in figures.items()
        }
        (tmp / REPORT_MD).write_text(
            markdown_report(title, verdict, links, frames, prov, notes=notes)
        )
        tex = _write_latex(tmp, tables, prov, latex_max_rows)
        written = [*exported.files, tmp / REPORT_HTML, tmp / REPORT_MD, *tex]
        sources = {
            n: {
                "path": str(t.source) if t.source else None,
                "sha256": sha256_file(t.source) if t.source else None,
            }
            for n, t in tables.items()
        }
        write_json_atomic(
            tmp / paths.META_FILE,
            provenance(
                stage="report",
                **(meta or {}),
                embed=embed,
                figures=sorted(figures),
                sources=sources,
                static_skipped=exported.static_skipped,
            ),
        )
        written.append(tmp / paths.META_FILE)
    return [out_dir / p.relative_to(tmp) for p in written]


def _write_latex(
    folder: Path, tables: Mapping[str, ResultTable], prov: Any, max_rows: int | None
) -> list[Path]:
    (folder / "tables").mkdir()
    files = []
    for name, table in {**{n: t.frame for n, t in tables.items()}, "provenance": prov}.items():
        path = folder / "tables" / f"{name}.tex"
        path.write_text(
            booktabs_table(
                table, caption=name.replace("_", " "), label=f"tab:{name}", max_rows=max_rows
            )
        )
        files.append(path)
    appendix = folder / APPENDIX_TEX
    appendix.write_text(
        "% needs \\usepackage{booktabs}\n" + "".join(f"\\input{{tables/{p.stem}}}\n" for p in files)
    )
    return [*files, appendix]
