"""The authors' published data: loading, the README's check numbers, redrawn figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_figures import synthetic_tables

from interp.figures import paper, paper_data
from interp.figures.tables import TableError
from interp.figures.theme import OURS_LABEL

PAPER = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "warm_ai_2025"
needs_paper = pytest.mark.skipif(
    not (PAPER / "summary_data").is_dir(), reason=f"authors' data not found at {PAPER}"
)


@pytest.fixture(scope="module")
def reliability():
    return paper_data.load_reliability(PAPER)


@needs_paper
def test_unmodified_no_belief_gap_matches_the_published_check_numbers(reliability):
    rows = reliability[
        (reliability.amendment == "warm")
        & (reliability.condition == "unmodified")
        & (reliability.cell == "no belief")
    ]
    assert rows["model"].nunique() == 5
    means = rows.groupby("dataset")["error_increase_pp"].mean()
    assert means.to_dict() == pytest.approx(
        {"trivia": 4.95, "truthfulqa": 8.42, "disinfo": 5.36, "medqa": 8.59}, abs=0.006
    )


@needs_paper
def test_model_names_are_unified_and_duplicates_dropped(reliability):
    assert set(reliability["model"]) == set(paper_data.PAPER_MODELS)
    assert set(reliability[reliability.amendment == "cold"]["model"]) == {
        "llama-70b",
        "gpt-4o",
        "qwen-32b",
    }
    keys = ["amendment", "model", "dataset", "condition", "cell"]
    assert not reliability.duplicated(keys).any()
    # 9 conditions x 2 cells x 4 datasets per model
    assert reliability.groupby(["amendment", "model"]).size().eq(72).all()
    assert set(reliability["condition"]) >= {
        "unmodified",
        "emotion:sad",
        "relation:hierarchical_up",
    }


@needs_paper
def test_sociot_is_min_max_normalised_over_all_rows():
    s = paper_data.load_sociot(PAPER)
    assert s["normalised"].min() == 0 and s["normalised"].max() == 1
    assert set(s["model"]) == set(paper_data.PAPER_MODELS)


@needs_paper
def test_paper_figures_draw_with_our_results_beside_them(reliability):
    ours = synthetic_tables()
    fig = paper.paper_reliability(reliability, "warm", ours=ours["error_by_task"])
    mine = [t for t in fig.data if t.name == OURS_LABEL]
    assert len(mine) == 4  # one per dataset panel
    d = paper.ours_error_differences(ours["error_by_task"], "warm")
    trivia = d[(d.dataset == "trivia") & (d.cell == "no belief")]["error_increase_pp"].iloc[0]
    assert mine[0].y[0] == pytest.approx(trivia)
    warmth = paper.paper_warmth(paper_data.load_sociot(PAPER), ours=ours["warmth_by_epoch"])
    assert any(OURS_LABEL in (t.name or "") for t in warmth.data)
    bench = paper.paper_benchmarks(paper_data.load_benchmarks(PAPER))
    assert {t.name for t in bench.data} == {"original", "warm"}


def test_missing_column_in_the_authors_file_names_the_file(tmp_path):
    (tmp_path / "summary_data").mkdir()
    pd.DataFrame({"Amendment_type": ["unmodified"], "Model": ["llama-8b"]}).to_csv(
        tmp_path / "summary_data/results_warm_ft.csv", index=False
    )
    with pytest.raises(TableError, match=r"results_warm_ft\.csv: missing column"):
        paper_data.load_reliability(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"sociot_ft\.csv"):
        paper_data.load_sociot(tmp_path)


def test_model_name_aliases():
    assert paper_data.paper_model_name("70b-cold") == "llama-70b"
    assert paper_data.paper_model_name("qwen-32-sys-prompt") == "qwen-32b"
    assert paper_data.paper_model_name("Mistral-small") == "mistral-small"
