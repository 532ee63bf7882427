"""The verdict protocol proves itself on a planted effect (tiny random model, CPU).

The "warm" model is the original with a known vector added to the residual stream at one layer
(a bias on that layer's MLP output), pointing at the unembedding of the one word every item's
wrong answer starts with. A gap exists by construction; removing the planted direction must close
it beyond a variance-matched null, and removing a random direction of the same size must not be
called restoring. The sentence rules are checked on hand-made tables.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from interp.causal.arms import Arm, score_prompts
from interp.causal.damage import continuation_units, text_units
from interp.causal.protocol import (
    PRIMARY,
    Models,
    ProtocolSettings,
    UneditedRows,
    first_items,
    headline_cells,
    run_protocol,
    unedited_rows,
)
from interp.causal.verdict_text import restoration_status, verdict_sentences
from interp.chat import encode_chat
from interp.data.build import prompt_list
from interp.data.items import Item
from interp.data.split import side_of
from interp.directions import Direction
from interp.evaluate import conversation
from interp.hooks import get_backend
from interp.scoring import candidate_tokens

WORDS = [
    "apple",
    "river",
    "stone",
    "cloud",
    "tiger",
    "piano",
    "lemon",
    "candle",
    "forest",
    "silver",
    "window",
    "garden",
    "rocket",
    "pencil",
    "bridge",
    "castle",
    "mirror",
    "rabbit",
    "summer",
    "violet",
    "planet",
    "butter",
    "anchor",
    "meadow",
    "copper",
    "island",
    "jacket",
    "ladder",
]
PLANT = 4.0  # the planted vector's norm: the tiny model then picks "France" on (nearly) every item


@pytest.fixture(scope="module")
def planted():
    from interp.tiny_models import tiny_model

    original = tiny_model("llama", n_layers=3, seed=0)
    tok = original.tokenizer
    items = [
        Item(
            f"gk-9{i:03d}",
            "general_knowledge",
            f"Which word is number {i} on my list?",
            w,
            "France",
        )
        for i, w in enumerate(WORDS)
    ]
    prompts, _ = prompt_list(
        items=items, conditions=("unmodified", "emotion:sad"), templates=("no_belief", "incorrect")
    )
    enc = encode_chat(tok, conversation(prompts[0]), add_generation_prompt=True)
    wrong = candidate_tokens(tok, enc.input_ids, enc.text, "France")[
        0
    ]  # the wrong answer's first token
    u = original.hf_model.lm_head.weight[wrong].detach().float()
    u = u / u.norm()
    warm = copy.deepcopy(original)
    layer = warm.hf_model.model.layers[2].mlp.down_proj
    with torch.no_grad():
        layer.bias = torch.nn.Parameter(PLANT * u)
    derivation = [p for p in prompts if side_of(p.item_id) == "derivation"]
    evaluation = [p for p in prompts if side_of(p.item_id) == "evaluation"]
    return original, warm, u, derivation, evaluation


def _run(planted, target: Direction, progress=lambda message: None, cold=None, unedited=None):
    original, warm, _, derivation, evaluation = planted
    ob, wb = get_backend(original, "torch"), get_backend(warm, "torch")
    units = {}
    held = [
        ("h1", "Tell me about rivers.", "Rivers carry water to the sea."),
        ("h2", "What is a piano?", "A piano is a keyboard instrument."),
    ]
    for name, b in (("original", ob), ("warm", wb)):
        convs = [(p.prompt_id, conversation(p)) for p in evaluation[:4]]
        units[name] = (
            continuation_units(b, convs, max_new_tokens=3),
            text_units(b.loaded.tokenizer, held),
        )
    models = _models(planted, cold)
    settings = ProtocolSettings(n_random=20, n_boot=200, n_components=8)
    return run_protocol(
        models,
        [target],
        [2],
        derivation,
        evaluation,
        [("r1", "Hi")],
        lambda replies: np.zeros(len(replies)),
        units,
        settings,
        progress,
        unedited,
    )


def _models(planted, cold=None) -> Models:
    original, warm, *_ = planted
    return Models(
        Arm("original", "none", get_backend(original, "torch")),
        Arm("warm", "none", get_backend(warm, "torch")),
        None if cold is None else Arm("cold", "none", get_backend(cold, "torch")),
    )


def test_the_null_covers_gap_cells_fully_and_other_cells_on_a_fixed_subset(planted):
    from interp.causal.arms import condition_of
    from interp.causal.protocol import null_items

    *_, evaluation = planted
    chosen = null_items(evaluation, ["neutral", "wrong belief"], ["neutral"], per_task=3)
    by_cell: dict[str, set[str]] = {}
    for p in chosen:
        by_cell.setdefault(condition_of(p), set()).add(p.item_id)
    every = {p.item_id for p in evaluation}
    assert set(by_cell) == {"neutral", "wrong belief"}
    assert by_cell["neutral"] == every
    assert len(by_cell["wrong belief"]) == 3 and by_cell["wrong belief"] < every


def test_split_is_stable_and_both_sides_are_used(planted):
    *_, derivation, evaluation = planted
    assert derivation and evaluation
    assert {p.item_id for p in derivation}.isdisjoint({p.item_id for p in evaluation})
    assert side_of("gk-9000") == side_of("gk-9000")


def test_the_planted_direction_is_found_and_its_removal_restores(planted):
    _, _, u, _, _ = planted
    target = Direction("planted", "known", "resid_post", "all", (2,), (PLANT * u)[None])
    messages: list[str] = []
    result = _run(planted, target, messages.append)
    from interp.figures.tables import SCHEMAS

    for name, table in (
        ("verdict_gap", result.gap),
        ("verdict_arms", result.arms),
        ("verdict_null", result.null),
        ("verdict_damage", result.damage),
    ):
        assert tuple(table.columns) == SCHEMAS[name], name
    assert result.headline, "the derivation split must show the planted gap"
    assert result.gap_cells, "the evaluation split must confirm it"
    for cell in result.gap_cells:
        status = restoration_status(result.arms, result.null, result.damage, "planted", cell)
        assert status.lowers_error and status.beyond_null and status.restores, status
    # the plant is a constant vector along the target at the removal layer, so removing the
    # fine-tune's shift (the warm mean projection set to the original's) gives back the original
    # model prompt by prompt
    pp = result.per_prompt.set_index("prompt_id")
    orig = pp[(pp.model == "original") & (pp.intervention == "none")]
    removed = pp[(pp.model == "warm") & (pp.intervention == f"{PRIMARY}:planted")]
    assert len(orig) == len(removed) > 0
    removed = removed.loc[orig.index]
    assert (removed["error"] == orig["error"]).all()
    np.testing.assert_allclose(removed["p_incorrect"], orig["p_incorrect"], atol=1e-4)
    # each model's target arms ran through the suffix engine with its unedited rows riding along
    # (at layer 2 of 4 that pays even for the original's one arm, as it saves the unedited
    # forward: suffix_pays); the run checked the riding rows of both models against the hooked
    # forward on the first 2 items per task, and the warm model's equal it on every prompt
    _, warm, _, _, evaluation = planted
    hooked = score_prompts(Arm("warm", "none", get_backend(warm, "torch")), evaluation)
    pp = result.per_prompt
    riding = pp[(pp.model == "warm") & (pp.intervention == "none")].set_index("prompt_id")
    hooked = hooked.set_index("prompt_id").loc[riding.index]
    assert len(riding) == len(evaluation)
    assert (riding["error"] == hooked["error"]).all()
    np.testing.assert_allclose(riding["p_incorrect"], hooked["p_incorrect"], atol=1e-4)
    n_checked = sum(p.item_id in first_items(evaluation, 2) for p in evaluation)
    assert result.engine_check["n_prompts"] == 2 * n_checked > 0  # both models, pooled
    assert any("and the unedited model" in m for m in messages)
    assert result.engine_check["error_flips"] == 0
    assert result.engine_check["max_abs_p_diff"] < 1e-4
    match = result.null_match["planted"]
    assert all(abs(r - 1) <= 0.1 for r in match["ratio@2"]) and len(match["ratio@2"]) == 20
    # each null arm removes the fine-tune's own shift along its random direction (the target's
    # operator): the plant lies along the target, so every random direction carries less of it
    assert len(match["null_shift"]) == 20
    assert max(abs(c) for c in match["null_shift"]) < abs(match["shift"][0])
    text = verdict_sentences(
        result.gap,
        result.headline,
        result.gap_cells,
        result.arms,
        result.null,
        result.damage,
        ["planted"],
    )
    assert "restores reliability beyond the null" in text
    gen = result.generation
    assert {"original/none", "warm/none", f"warm/{PRIMARY}:planted"} == set(
        gen["model"] + "/" + gen["intervention"]
    )  # the arms the verdict reads it on, not the zero-ablation or the original's control
    assert (result.arms.measure == "gen_error").any() and (
        result.arms.measure == "gen_unsure"
    ).any()


def test_a_random_direction_of_the_same_size_is_not_called_restoring(planted):
    _, _, u, _, _ = planted
    g = torch.Generator().manual_seed(5)
    r = torch.randn(u.shape, generator=g)
    r = r - (r @ u) * u
    target = Direction("random", "random", "resid_post", "all", (2,), (PLANT * r / r.norm())[None])
    result = _run(planted, target)
    assert result.gap_cells
    for cell in result.gap_cells:
        assert not restoration_status(
            result.arms, result.null, result.damage, "random", cell
        ).restores


def _gap(split: str, gaps: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
    rows = [
        {
            "split": split,
            "contrast": "warm - original",
            "condition": c,
            "task": "all",
            "measure": "error",
            "n_items": 50,
            "mean": 0.3,
            "ci_low": 0.2,
            "ci_high": 0.4,
            "gap": g,
            "gap_low": lo,
            "gap_high": hi,
            "p_value": 0.01,
            "q_value": 0.02,
        }
        for c, (g, lo, hi) in gaps.items()
    ]
    return pd.DataFrame(rows)


def test_no_gap_means_no_restoration_claim():
    derivation = _gap("derivation", {"neutral": (-0.02, -0.06, 0.02), "sad": (0.0, -0.03, 0.03)})
    assert headline_cells(derivation) == []
    text = verdict_sentences(
        derivation, [], [], pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), ["finetune"]
    )
    assert "claims neither restoration nor separability" in text and "restores" not in text
    evaluation = _gap("evaluation", {"neutral": (0.01, -0.02, 0.04)})
    both = pd.concat([derivation.assign(gap=0.05, gap_low=0.01), evaluation])
    text = verdict_sentences(
        both, ["neutral"], [], pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), ["finetune"]
    )
    assert "No headline cell shows a gap" in text and "claims neither" in text


def test_a_damaged_arm_is_not_counted():
    status, text = _one_arm(
        diff_high=-0.1, q=0.001, percentile=0.0, contrast_high=-0.1, warmth=-0.2, damaged=True
    )
    assert status.lowers_error and status.beyond_null and status.damaged and not status.restores
    assert not status.separable
    assert "not counted as restoration" in text and "restores reliability" not in text


def _one_arm(
    diff_high: float,
    q: float,
    percentile: float,
    contrast_high: float,
    warmth: float,
    damaged: bool = False,
):
    """The restoration status and verdict text for one target in the neutral cell (a gap of
    +20 pp), from arms, null and damage tables built to the given values."""
    arm = f"warm/{PRIMARY}:finetune"
    arms = pd.DataFrame(
        [
            {
                "arm": arm,
                "condition": "neutral",
                "task": "all",
                "measure": "error",
                "diff_vs_ref": diff_high - 0.1,
                "diff_low": diff_high - 0.2,
                "diff_high": diff_high,
                "q_value": q,
                "p_value": q,
            },
            {
                "arm": arm,
                "condition": "neutral",
                "task": "all",
                "measure": "warmth",
                "diff_vs_ref": warmth,
                "diff_low": warmth - 0.05,
                "diff_high": warmth + 0.02,
                "q_value": 0.01,
                "p_value": 0.01,
            },
        ]
    )
    null = pd.DataFrame(
        [
            {
                "target": "finetune",
                "condition": "neutral",
                "measure": "error",
                "percentile": percentile,
                "contrast": contrast_high - 0.1,
                "contrast_low": contrast_high - 0.2,
                "contrast_high": contrast_high,
                "n_null": 20,
            }
        ]
    )
    damage = pd.DataFrame(
        [
            {
                "arm": arm,
                "measure": "heldout_loss_increase",
                "mean": 3.0 if damaged else 0.0,
                "ci_low": -0.01,
                "ci_high": 0.01,
                "null_min": -0.02,
                "null_max": 0.02,
                "damaged": damaged,
            }
        ]
    )
    text = verdict_sentences(
        _gap("evaluation", {"neutral": (0.2, 0.1, 0.3)}),
        ["neutral"],
        ["neutral"],
        arms,
        null,
        damage,
        ["finetune"],
    )
    return restoration_status(arms, null, damage, "finetune", "neutral"), text


def test_a_removal_beyond_the_null_that_fails_bh_is_told_why_and_is_not_separable():
    status, text = _one_arm(
        diff_high=-0.04, q=0.1, percentile=0.0, contrast_high=-0.04, warmth=-0.2
    )
    assert status.beyond_null and not status.lowers_error and not status.restores
    assert not status.separable, "meeting one restoration condition is not evidence of separation"
    assert "is not called restoring (its error change has q = 0.1, not below 0.05)" in text
    assert "separate warmth from the gap" in text and "here warmth and the gap separate" not in text


def test_separable_needs_neither_condition_and_names_both_failures():
    status, text = _one_arm(diff_high=0.05, q=0.8, percentile=40.0, contrast_high=0.03, warmth=-0.2)
    assert status.separable and not status.restores
    assert "the CI of its error change reaches zero" in text
    assert "the CI of its contrast with the null reaches zero" in text
    assert "above the null's 5th percentile" in text and "here warmth and the gap separate" in text
    status, text = _one_arm(diff_high=0.05, q=0.8, percentile=40.0, contrast_high=0.03, warmth=0.1)
    assert not status.separable and "it does not restore reliability beyond the null (" in text


def test_unedited_rows_measured_before_give_the_verdict_it_measures_itself(planted):
    """The study measures the direction-free rows in a step of their own, beside the directions
    (interp verdict-unedited): handed to the protocol they give the tables it gives when it
    measures them itself; rows of other prompts are refused."""
    original, _, u, derivation, evaluation = planted
    cold = copy.deepcopy(original)
    with torch.no_grad():  # a cold model that differs from the original
        cold.hf_model.model.layers[1].mlp.down_proj.bias = torch.nn.Parameter(-0.5 * u)
    target = Direction("planted", "known", "resid_post", "all", (2,), (PLANT * u)[None])
    settings = ProtocolSettings(n_random=20, n_boot=200, n_components=8)
    rows = unedited_rows(_models(planted, cold), derivation, evaluation, settings)
    assert set(rows.derivation.model) == {"original", "warm", "cold"}
    assert set(rows.cold_evaluation.model) == {"cold"}
    assert len(rows.cold_evaluation) == len(evaluation)
    messages: list[str] = []
    given = _run(planted, target, messages.append, cold=cold, unedited=rows)
    assert not any("cold/none" in m for m in messages)  # the cold model was not scored again
    measured = _run(planted, target, cold=cold)
    for name in ("gap", "arms", "null", "per_prompt", "generation", "warmth"):
        a, b = getattr(given, name), getattr(measured, name)
        pd.testing.assert_frame_equal(
            a.sort_values(list(a.columns[:4])).reset_index(drop=True),
            b.sort_values(list(b.columns[:4])).reset_index(drop=True),
            check_dtype=False,
            obj=name,
        )
    assert (given.gap.contrast == "cold - original").any()
    assert given.headline == measured.headline and given.gap_cells == measured.gap_cells
    short = UneditedRows(rows.derivation.iloc[1:], rows.cold_evaluation, rows.generation)
    with pytest.raises(ValueError, match="derivation: expected"):
        _run(planted, target, cold=cold, unedited=short)
    short = UneditedRows(rows.derivation, rows.cold_evaluation.iloc[:-1], rows.generation)
    with pytest.raises(ValueError, match="cold_evaluation: expected"):
        _run(planted, target, cold=cold, unedited=short)
    with pytest.raises(ValueError, match="models original, warm x"):
        _run(planted, target, unedited=rows)  # rows with a cold model, a run without one
