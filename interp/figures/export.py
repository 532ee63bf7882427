"""Write figures: interactive HTML always; PNG and PDF through kaleido when a Chromium exists.

All static images of one call are rendered in a single kaleido browser session
(``kaleido.write_fig_from_object_sync`` with every figure at once), since starting the browser
costs seconds. MathJax is disabled (the machines are offline and no figure uses LaTeX).
Nothing is overwritten: an existing target file is an error.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import plotly.graph_objects as go

from interp.artifacts import ArtifactExistsError
from interp.figures.theme import EXPORT_HEIGHT, EXPORT_WIDTH

log = logging.getLogger(__name__)

CHROMIUM = Path("/usr/bin/chromium")
STATIC_FORMATS = ("png", "pdf")
PLOTLY_JS = "plotly.min.js"


@dataclass
class ExportResult:
    """What :func:`write_figures` wrote: files, and why static images are missing if they are."""

    files: list[Path] = field(default_factory=list)
    static_skipped: str | None = None
    static_seconds: float = 0.0
    n_static_figures: int = 0

    @property
    def seconds_per_figure(self) -> float:
        """Wall time of the static export per figure (all formats of it), browser start included."""
        return self.static_seconds / self.n_static_figures if self.n_static_figures else 0.0


def _size(fig: go.Figure) -> tuple[int, int]:
    height = fig.layout.height if fig.layout.height is not None else EXPORT_HEIGHT
    width = fig.layout.width if fig.layout.width is not None else EXPORT_WIDTH
    return int(width), int(height)


def _check_free(paths: Sequence[Path]) -> None:
    taken = [str(p) for p in paths if p.exists()]
    if taken:
        raise ArtifactExistsError(f"refusing to overwrite existing figure file(s): {taken}")


def write_figures(
    figures: Mapping[str, go.Figure],
    out_dir: Path,
    formats: Sequence[str] = STATIC_FORMATS,
    chromium: Path | None = CHROMIUM,
    scale: float = 2.0,
) -> ExportResult:
    """Write each figure as ``<out_dir>/<name>.html`` (plotly.js once, as ``plotly.min.js``
    beside them) and, if ``chromium`` exists, ``<name>.<fmt>`` for every format in ``formats``.

    ``chromium=None`` or a missing browser gives a warning and HTML only. PNGs are rendered at
    ``scale`` x the figure's layout size (default 1200 x 700 px).
    """
    unknown = sorted(set(formats) - {"png", "pdf", "svg", "jpg", "webp"})
    if unknown:
        raise ValueError(
            f"unknown image format(s) {unknown}; kaleido writes png, pdf, svg, jpg, webp"
        )
    for name in figures:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"figure name must be a plain file stem, found {name!r}")
    out_dir = Path(out_dir)
    html = [out_dir / f"{name}.html" for name in figures]
    static = [(name, fmt, out_dir / f"{name}.{fmt}") for name in figures for fmt in formats]
    _check_free(html + [p for _, _, p in static])
    out_dir.mkdir(parents=True, exist_ok=True)
    result = ExportResult()
    for fig, path in zip(figures.values(), html, strict=True):
        fig.write_html(path, include_plotlyjs="directory", full_html=True)
        result.files.append(path)
    if (out_dir / PLOTLY_JS).is_file():
        result.files.append(out_dir / PLOTLY_JS)
    if not static:
        return result
    if chromium is None or not Path(chromium).exists():
        result.static_skipped = (
            f"no Chromium at {chromium}; wrote HTML only (install Debian's chromium for PNG/PDF)"
        )
        warnings.warn(result.static_skipped, stacklevel=2)
        return result
    _write_static(figures, static, Path(chromium), scale, result)
    return result


def _write_static(
    figures: Mapping[str, go.Figure],
    static: list[tuple[str, str, Path]],
    chromium: Path,
    scale: float,
    result: ExportResult,
) -> None:
    import kaleido

    specs = []
    for name, fmt, path in static:
        width, height = _size(figures[name])
        specs.append(
            {
                "fig": figures[name],
                "path": str(path),
                "opts": {"format": fmt, "width": width, "height": height, "scale": scale},
            }
        )
    start = time.perf_counter()
    try:
        kaleido.write_fig_from_object_sync(
            specs, kopts={"mathjax": False, "path": str(chromium)}, cancel_on_error=True
        )
    except Exception as exc:  # kaleido and choreographer raise many kinds; name the cause
        result.static_skipped = (
            f"kaleido failed with {chromium}: {type(exc).__name__}: {exc}; wrote HTML only"
        )
        warnings.warn(result.static_skipped, stacklevel=3)
        return
    result.static_seconds = time.perf_counter() - start
    result.n_static_figures = len(figures)
    missing = [str(p) for _, _, p in static if not p.is_file()]
    if missing:
        raise RuntimeError(f"kaleido reported success but did not write {missing}")
    result.files.extend(p for _, _, p in static)
    log.info("static export: %d figure(s) in %.1f s", len(figures), result.static_seconds)
