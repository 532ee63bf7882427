"""The report: HTML page, Markdown twin, LaTeX tables, verdict sentences, provenance."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest
from test_figures import synthetic_tables

from interp.artifacts import ArtifactExistsError
from interp.config import ConfigError
from interp.figures import error_by_task, verdict_bars
from interp.figures.export import CHROMIUM
from interp.report import (
    ResultTable,
    booktabs_table,
    load_results,
    provenance_table,
    verdict_sentences,
    write_report,
)
from interp.report.formatting import format_value

META = {
    "stage": "eval",
    "config": {"model": "smollm2-135m-instruct", "seed": 0},
    "model": "smollm2-135m-instruct",
    "weights_hash": "a" * 64,
    "adapter": "warm",
    "adapter_hash": "b" * 64,
    "prompts_sha256": "c" * 64,
    "git_commit": "deadbeef",
    "created": "2026-12-01T00:00:00+00:00",
}


def _inputs():
    t = synthetic_tables()
    results = {
        "error_by_task": (t["error_by_task"], META),
        "verdict": ResultTable(t["verdict"], {}),
    }
    figures = {
        "error_by_task": error_by_task(t["error_by_task"]),
        "verdict": verdict_bars(t["verdict"]),
    }
    return t, results, figures


def test_report_folder_has_every_part(tmp_path):
    t, results, figures = _inputs()
    verdict = verdict_sentences(t["verdict"])
    with pytest.warns(UserWarning, match="HTML only"):
        files = write_report(results, figures, verdict, tmp_path / "r", chromium=None)
    names = {f.relative_to(tmp_path / "r").as_posix() for f in files}
    assert {
        "report.html",
        "report.md",
        "appendix.tex",
        "meta.json",
        "tables/verdict.tex",
        "tables/error_by_task.tex",
        "tables/provenance.tex",
        "figures/verdict.html",
        "figures/error_by_task.html",
    } <= names
    page = (tmp_path / "r" / "report.html").read_text()
    assert page.count("Plotly.newPlot") == 2  # two interactive figures ...
    assert page.count("* plotly.js v") == 1  # ... and plotly.js inlined once
    assert "<script src=" not in page and "http://" not in page.split("<script>")[0]
    assert html.escape(verdict[0]) in page
    assert "weights_hash=aaaaaaaaaaaa" in page and "deadbeef" in page
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## Verdict" in md and "## Provenance" in md and "(figures/verdict.html)" in md
    assert "prompts_sha256=cccccccccccc" in md
    meta = json.loads((tmp_path / "r" / "meta.json").read_text())
    assert meta["stage"] == "report" and meta["figures"] == ["error_by_task", "verdict"]
    with pytest.raises(ArtifactExistsError):
        write_report(results, figures, verdict, tmp_path / "r", chromium=None)


def test_png_embedding_falls_back_to_interactive_without_pngs(tmp_path):
    _, results, figures = _inputs()
    with pytest.warns(UserWarning):
        write_report(results, figures, "verdict", tmp_path / "r", embed="png", chromium=None)
    page = (tmp_path / "r" / "report.html").read_text()
    assert "<img alt=" not in page and page.count("Plotly.newPlot") == 2


def test_empty_verdict_and_bad_results_are_refused(tmp_path):
    _, results, figures = _inputs()
    with pytest.raises(ConfigError, match="verdict text is empty"):
        write_report(results, figures, " ", tmp_path / "r", chromium=None)
    with pytest.raises(ConfigError, match="expected \\(DataFrame, meta dict\\)"):
        write_report({"x": "not a table"}, figures, "v", tmp_path / "r", chromium=None)


def test_verdict_sentences_carry_the_numbers():
    v = synthetic_tables()["verdict"]
    sentences = verdict_sentences(v)
    row = v[(v.condition == "sad + wrong belief") & (v.intervention == "ablate:warmth")].iloc[0]
    gap = v[(v.condition == "sad + wrong belief") & (v.model == "original")]["diff_vs_warm"].iloc[0]
    first = sentences[0]
    assert "sad + wrong belief" in first and "'ablate:warmth'" in first
    assert f"{row.diff_vs_warm * 100:+.1f} pp" in first and f"{row.diff_low * 100:+.1f} pp" in first
    assert "excludes zero" in first and f"{row.diff_vs_warm / gap:.0%}" in first
    assert "random direction" in sentences[1] and "includes zero" in sentences[1]
    with pytest.raises(Exception, match="no rows with measure 'warmth'"):
        verdict_sentences(v, measure="warmth")


def test_provenance_reads_hashes_and_says_what_is_missing():
    table = provenance_table(
        {
            "a": ResultTable(synthetic_tables()["patching"], META),
            "b": ResultTable(synthetic_tables()["patching"], {}),
        }
    )
    a, b = table.iloc[0], table.iloc[1]
    assert a["command"] == "interp eval" and a["model"] == "smollm2-135m-instruct + warm"
    assert (
        "weights_hash=aaaaaaaaaaaa" in a["model hashes"]
        and "adapter_hash=bbbbbbbbbbbb" in a["model hashes"]
    )
    assert a["data hashes"] == "prompts_sha256=cccccccccccc"
    assert re.fullmatch(r"[0-9a-f]{12} \(of meta config\)", a["config hash"])
    assert (b.drop("result") == "not recorded").all()


def test_booktabs_escapes_and_truncates():
    df = synthetic_tables()["sae_decomposition"]
    tex = booktabs_table(df, "SAE & friends", "tab:sae", max_rows=3)
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert "SAE \\& friends" in tex and "top\\_examples" in tex
    assert tex.count("\\\\\n") == 1 + 3 and f"{len(df) - 3} more rows" in tex


def test_format_value():
    assert (
        format_value(np.nan) == "–"
        and format_value(3.0) == "3"
        and format_value(0.12345) == "0.123"
    )
    assert format_value(np.int64(7)) == "7" and format_value(0.0001234) == "0.000123"


def test_load_results_pairs_tables_with_their_meta(tmp_path):
    t = synthetic_tables()
    (tmp_path / "eval" / "x").mkdir(parents=True)
    t["error_by_task"].to_csv(tmp_path / "eval" / "x" / "error_by_task.csv", index=False)
    (tmp_path / "eval" / "meta.json").write_text(json.dumps(META))
    loaded = load_results(tmp_path)
    assert (
        set(loaded) == {"error_by_task"}
        and loaded["error_by_task"].meta["git_commit"] == "deadbeef"
    )
    (tmp_path / "eval" / "meta.json").write_text("{broken")
    with pytest.raises(ConfigError, match=r"meta\.json: not valid JSON"):
        load_results(tmp_path)


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}")
def test_png_embedding_with_exported_pngs(tmp_path):
    _, results, figures = _inputs()
    write_report(results, figures, "verdict", tmp_path / "r", embed="png", formats=("png",))
    page = (tmp_path / "r" / "report.html").read_text()
    assert (
        page.count('<img alt="') == 2
        and "Plotly.newPlot" not in page
        and "* plotly.js v" not in page
    )
    assert (
        "![Does removing the direction restore reliability?](figures/verdict.png)"
        in (tmp_path / "r" / "report.md").read_text()
    )
