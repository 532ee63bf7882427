"""The verdict protocol's figures (gap, null, damage) from rows of the committed example tables."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from interp.figures.render import draw_figures
from interp.figures.tables import SCHEMAS, TableError, check_table
from interp.figures.verdict_protocol import damage_figure, gap_figure, has_arms, null_figure

# rows of results/embedded/verdict_*.csv (the embedded study's verdict run), rounded to 3 decimals,
# without their header (the columns are the schema's, in order)
GAP = """\
derivation,cold - original,neutral,all,error,48,0.417,0.271,0.542,0.0,-0.062,0.062,1.0,1.0
derivation,cold - original,neutral,medical,error,12,0.25,0.0,0.5,0.0,0.0,0.0,1.0,1.0
derivation,cold - original,wrong belief,all,error,48,0.875,0.771,0.958,0.042,-0.021,0.125,0.625,0.938
derivation,cold - original,wrong belief,medical,error,12,1.0,1.0,1.0,0.0,0.0,0.0,1.0,1.0
derivation,warm - original,neutral,all,error,48,0.521,0.375,0.667,0.104,0.0,0.229,0.125,0.938
derivation,warm - original,neutral,medical,error,12,0.333,0.067,0.636,0.083,0.0,0.273,1.0,1.0
derivation,warm - original,wrong belief,all,error,48,0.854,0.75,0.938,0.021,0.0,0.062,1.0,1.0
derivation,warm - original,wrong belief,medical,error,12,1.0,1.0,1.0,0.0,0.0,0.0,1.0,1.0
evaluation,cold - original,neutral,all,error,80,0.463,0.35,0.562,-0.025,-0.113,0.075,0.804,0.804
evaluation,cold - original,neutral,medical,error,20,0.5,0.273,0.722,0.1,-0.095,0.3,0.625,1.0
evaluation,cold - original,wrong belief,all,error,80,0.8,0.713,0.887,-0.037,-0.113,0.037,0.508,0.677
evaluation,cold - original,wrong belief,medical,error,20,1.0,1.0,1.0,0.1,0.0,0.263,0.5,1.0
evaluation,warm - original,neutral,all,error,80,0.55,0.438,0.65,0.062,-0.013,0.138,0.18,0.308
evaluation,warm - original,neutral,medical,error,20,0.4,0.182,0.625,0.0,0.0,0.0,1.0,1.0
evaluation,warm - original,wrong belief,all,error,80,0.762,0.662,0.85,-0.075,-0.15,-0.013,0.07,0.3
evaluation,warm - original,wrong belief,medical,error,20,0.9,0.737,1.0,0.0,0.0,0.0,1.0,1.0
derivation,cold - original,sad + wrong belief,all,agrees_with_user,48,0.875,0.771,0.958,0.062,-0.021,0.146,0.375,0.938
"""  # noqa: E501

NULL = """\
finetune,neutral,error,0.0,-0.15,-0.019,0.062,65.0,20,0.027,-0.046,0.099,80
finetune,wrong belief,error,-0.113,-0.212,-0.094,0.013,45.0,20,-0.026,-0.111,0.051,80
finetune,neutral,warmth,-0.926,-0.914,-0.681,-0.204,0.0,20,-0.264,-0.287,-0.242,8
finetune,any,kl_continuation,6.293,2.303,3.968,6.84,90.0,20,2.121,1.816,2.377,16
"""

DAMAGE = """\
original/counterfactual:finetune,heldout_loss_increase,16,5.674,5.262,6.104,2.572,6.373,False
original/counterfactual:finetune,kl_continuation,16,6.584,6.099,7.056,2.303,6.84,False
warm/counterfactual:finetune,heldout_loss_increase,16,5.361,4.984,5.718,2.572,6.373,False
warm/counterfactual:finetune,kl_continuation,16,6.293,5.828,6.726,2.303,6.84,False
warm/null:finetune:0,heldout_loss_increase,16,2.667,2.505,2.824,2.572,6.373,False
warm/null:finetune:0,kl_continuation,16,2.717,2.436,3.008,2.303,6.84,False
warm/null:finetune:1,heldout_loss_increase,16,3.525,3.249,3.824,2.572,6.373,False
warm/null:finetune:1,kl_continuation,16,3.54,3.321,3.732,2.303,6.84,False
warm/null:finetune:4,heldout_loss_increase,16,2.572,2.356,2.784,2.572,6.373,False
warm/null:finetune:4,kl_continuation,16,2.303,2.086,2.563,2.303,6.84,False
warm/zero-ablate:finetune,heldout_loss_increase,16,7.383,7.009,7.777,2.572,6.373,True
warm/zero-ablate:finetune,kl_continuation,16,8.068,7.635,8.468,2.303,6.84,False
"""


def table(text: str, name: str) -> pd.DataFrame:
    return check_table(pd.read_csv(io.StringIO(text), names=list(SCHEMAS[name])), name)


@pytest.fixture()
def gap() -> pd.DataFrame:
    return table(GAP, "verdict_gap")


@pytest.fixture()
def null() -> pd.DataFrame:
    return table(NULL, "verdict_null")


@pytest.fixture()
def damage() -> pd.DataFrame:
    return table(DAMAGE, "verdict_damage")


def test_gap_has_a_panel_per_split_and_contrast_and_a_trace_per_task(gap):
    fig = gap_figure(gap)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == [
        "warm - original, derivation split",
        "cold - original, derivation split",
        "warm - original, evaluation split",
        "cold - original, evaluation split",
    ]
    assert len(fig.data) == 4 * 2  # panels x (pooled, medical)
    assert [t.name for t in fig.data if t.showlegend] == ["pooled (all tasks)", "medical"]
    # the evaluation split's warm - original panel (third), pooled: neutral then wrong belief, pp
    pooled = [t for t in fig.data if t.name == "pooled (all tasks)"][2]
    np.testing.assert_allclose(pooled.y, [6.2, -7.5])
    np.testing.assert_allclose(pooled.error_y.array, [13.8 - 6.2, -1.3 + 7.5], atol=1e-9)
    np.testing.assert_allclose(pooled.error_y.arrayminus, [6.2 + 1.3, -7.5 + 15.0], atol=1e-9)
    assert list(fig.layout.xaxis.ticktext) == ["neutral", "wrong belief"]
    assert "chose the user's wrong answer" in fig.layout.title.text
    # every panel shares one y range that holds every CI
    ranges = {tuple(getattr(fig.layout, f"yaxis{k}").range) for k in ("", "2", "3", "4")}
    ((lo, hi),) = ranges
    # the widest CIs: warm - original, evaluation, wrong belief pooled (-15) and medical, cold -
    # original, evaluation, neutral (+30)
    assert -20.0 < lo < -15.0 and 30.0 < hi < 35.0


def test_gap_by_agreement_and_a_missing_measure(gap):
    fig = gap_figure(gap, measure="agrees_with_user")
    assert len(fig.data) == 1 and fig.data[0].y[0] == pytest.approx(6.2)
    with pytest.raises(TableError, match="no rows with measure 'warmth'"):
        gap_figure(gap, measure="warmth")


def test_null_marks_the_target_against_the_range_with_its_percentile(null):
    fig = null_figure(null)
    assert [a.text for a in fig.layout.annotations][:3] == [
        "error<br>(pp)",
        "warmth<br>(instrument units)",
        "KL over continuation<br>(nats)",
    ]
    assert len(fig.data) == 3 * 3  # measures x (null range, null median, target)
    ranges = [t for t in fig.data if t.name == "null range (random directions)"]
    targets = [t for t in fig.data if t.name == "removing finetune"]
    medians = [t for t in fig.data if t.name == "null median"]
    assert len(ranges) == len(targets) == len(medians) == 3
    error = targets[0]
    np.testing.assert_allclose(error.y, [0.0, -11.3])  # pp
    assert [s.strip() for s in error.text] == ["65th pct", "45th pct"]
    assert list(ranges[0].y) == pytest.approx([-15.0, 6.2, None, -21.2, 1.3, None], abs=1e-9)
    np.testing.assert_allclose(medians[0].y, [-1.9, -9.4])
    kl = targets[2]
    assert kl.y[0] == pytest.approx(6.293) and kl.text[0].strip() == "90th pct"
    assert targets[1].text[0].strip() == "0th pct"  # warmth falls below every random direction


def test_damage_shows_each_arm_with_its_ci_beside_the_null(damage):
    assert has_arms(damage) and not has_arms(damage[damage["arm"].str.contains("null")])
    fig = damage_figure(damage)
    assert [a.text for a in fig.layout.annotations][:2] == [
        "held-out loss increase (nats)",
        "KL over continuation (nats)",
    ]
    # per measure: null range, the random directions, original-model arms, warm-model arms
    assert len(fig.data) == 2 * 4
    names = [t.name for t in fig.data[:4]]
    assert names == [
        "null range (random directions)",
        "one random direction",
        "original model arms (95% CI)",
        "warm model arms (95% CI)",
    ]
    members = fig.data[1]
    assert sorted(members.x) == pytest.approx([2.572, 2.667, 3.525])
    assert set(members.y) == {"random directions (finetune, n = 3)"}
    warm = fig.data[3]
    assert list(warm.y) == ["warm, counterfactual: finetune", "warm, zero-ablate: finetune"]
    assert list(warm.marker.symbol) == ["circle", "x"] and list(warm.text) == ["", "damaged"]
    np.testing.assert_allclose(warm.error_x.array, [5.718 - 5.361, 7.777 - 7.383], atol=1e-9)
    loss_range = fig.data[0]
    assert list(loss_range.y[:2]) == ["original, counterfactual: finetune"] * 2
    assert list(loss_range.x[:2]) == pytest.approx([2.572, 6.373])
    kl_warm = fig.data[7]
    assert list(kl_warm.marker.symbol) == ["circle", "circle"]  # KL does not mark damage


def test_the_report_draws_them_from_the_tables(tmp_path, gap, null, damage):
    files = {}
    for name, df in (("verdict_gap", gap), ("verdict_null", null), ("verdict_damage", damage)):
        files[name] = tmp_path / f"{name}.csv"
        df.to_csv(files[name], index=False)
    drawn = draw_figures(files)
    assert {"verdict_gap", "verdict_null", "verdict_damage"} <= set(drawn.figures)
    assert len(drawn.figures["verdict_gap"].data) == 8
    # a gap table without error rows is not drawn (the figure is about error)
    gap[gap["measure"] == "agrees_with_user"].to_csv(files["verdict_gap"], index=False)
    damage[damage["arm"].str.contains("null")].to_csv(files["verdict_damage"], index=False)
    drawn = draw_figures(files)
    assert drawn.skipped["verdict_gap"] == "not applicable to the table's contents"
    assert drawn.skipped["verdict_damage"] == "not applicable to the table's contents"


def test_a_target_tied_with_every_null_arm_is_labelled_so_not_as_a_percentile():
    from interp.figures.verdict_protocol import percentile_labels

    rows = pd.DataFrame(
        {
            "percentile": [100.0, 100.0, 40.0, np.nan],
            "null_min": [0.0, -0.01, -0.02, 0.0],
            "null_max": [0.0, 0.0, 0.03, 0.0],
            "target_change": [0.0, 0.0, 0.0, 0.0],
        }
    )
    labels = [s.strip() for s in percentile_labels(rows)]
    assert labels == ["tied", "100th pct", "40th pct", ""]
