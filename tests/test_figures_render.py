"""render_all and export: which figures are drawn or skipped, files, no overwriting, kaleido."""

from __future__ import annotations

import json
from pathlib import Path

import plotly.graph_objects as go
import pytest
from test_figures import synthetic_tables

from interp.artifacts import ArtifactExistsError
from interp.config import ConfigError
from interp.figures import find_tables, render_all, write_figures
from interp.figures.export import CHROMIUM
from interp.figures.tables import TableError


def _write(tables, root: Path, names) -> None:
    for name in names:
        folder = root / name.split("_")[0]
        folder.mkdir(parents=True, exist_ok=True)
        tables[name].to_csv(folder / f"{name}.csv", index=False)


def test_render_all_draws_what_exists_and_lists_what_is_missing(tmp_path):
    _write(synthetic_tables(), tmp_path / "results", ["error_by_task", "probe_auroc"])
    with pytest.warns(UserWarning, match="HTML only"):
        files = render_all(tmp_path / "results", tmp_path / "figs", None, chromium=None)
    names = {f.name for f in files}
    assert {
        "error_by_task.html",
        "agreement_by_task.html",
        "sycophancy_scatter.html",
        "probe_auroc.html",
        "plotly.min.js",
        "figures.json",
        "meta.json",
    } == names
    assert all(f.is_file() for f in files)
    index = json.loads((tmp_path / "figs" / "figures.json").read_text())
    assert index["skipped"]["verdict"] == "no verdict.csv"
    assert "paper_*" in index["skipped"] and "HTML only" in index["static_skipped"]
    meta = json.loads((tmp_path / "figs" / "meta.json").read_text())
    assert (
        set(meta["sources"]) == {"error_by_task", "probe_auroc"}
        and len(meta["sources"]["probe_auroc"]["sha256"]) == 64
    )
    with pytest.raises(ArtifactExistsError):
        render_all(tmp_path / "results", tmp_path / "figs", None, chromium=None)


def test_ambiguous_and_malformed_tables_are_errors(tmp_path):
    t = synthetic_tables()
    _write(t, tmp_path / "a", ["patching"])
    _write(t, tmp_path / "b", ["patching"])
    with pytest.raises(ConfigError, match=r"2 files named patching\.csv"):
        find_tables(tmp_path)
    t["patching"].drop(columns=["recovered"]).to_csv(
        tmp_path / "b" / "patching" / "patching.csv", index=False
    )
    with pytest.raises(
        TableError, match=r"patching\.csv: patching: missing column\(s\) \['recovered'\]"
    ):
        render_all(
            None,
            tmp_path / "out",
            tables={"patching": tmp_path / "b" / "patching" / "patching.csv"},
            chromium=None,
        )
    assert not (tmp_path / "out").exists()


def test_export_refuses_to_overwrite_and_bad_names(tmp_path):
    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))
    write_figures({"a": fig}, tmp_path, formats=(), chromium=None)
    with pytest.raises(ArtifactExistsError, match=r"a\.html"):
        write_figures({"a": fig}, tmp_path, formats=(), chromium=None)
    with pytest.raises(ValueError, match="plain file stem"):
        write_figures({"../x": fig}, tmp_path, formats=(), chromium=None)
    with pytest.raises(ValueError, match="unknown image format"):
        write_figures({"b": fig}, tmp_path, formats=("gif",), chromium=None)


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}")
def test_png_and_pdf_through_one_kaleido_session(tmp_path):
    t = synthetic_tables()
    from interp.figures import patching_recovery, verdict_bars

    result = write_figures(
        {"patching": patching_recovery(t["patching"]), "verdict": verdict_bars(t["verdict"])},
        tmp_path,
    )
    assert result.static_skipped is None and result.n_static_figures == 2
    png = (tmp_path / "patching.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(png[16:20], "big")
    assert width == 2 * 1200  # layout width x scale 2
    assert (tmp_path / "verdict.pdf").read_bytes()[:4] == b"%PDF"


PAPER = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "warm_ai_2025"


@pytest.mark.skipif(
    not (PAPER / "summary_data").is_dir(), reason=f"authors' data not found at {PAPER}"
)
def test_render_all_adds_the_paper_figures(tmp_path):
    _write(synthetic_tables(), tmp_path / "results", ["error_by_task"])
    with pytest.warns(UserWarning):
        files = render_all(tmp_path / "results", tmp_path / "figs", PAPER, chromium=None)
    names = {f.name for f in files}
    assert {
        "paper_reliability_warm.html",
        "paper_reliability_cold.html",
        "paper_reliability_warm-sysprompt.html",
        "paper_warmth.html",
        "paper_benchmarks.html",
    } <= names
    meta = json.loads((tmp_path / "figs" / "meta.json").read_text())
    assert meta["sources"]["paper:sociot"]["path"].endswith("sociot_ft.csv")
