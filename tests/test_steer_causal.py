"""Verdict table and activation patching on tiny random models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from interp.causal.arms import CONDITIONS, Arm, intervention_edits, score_prompts, score_warmth
from interp.causal.patching import PATCHING_COLUMNS, PatchArm, patch_readings, recovered_table
from interp.causal.verdict import VERDICT_COLUMNS, verdict_sentence, verdict_table
from interp.data.build import prompt_list
from interp.directions import Direction
from interp.hooks import get_backend
from interp.steer import Intervention, random_directions


@pytest.fixture(scope="module")
def prompts():
    ps, _ = prompt_list(
        conditions=("unmodified", "emotion:sad"), templates=("no_belief", "incorrect"), per_task=1
    )
    return ps


def test_patching_the_last_layer_everywhere_recovers_the_whole_gap(prompts):
    import copy

    from interp.tiny_models import tiny_model

    a = tiny_model("llama", n_layers=3, seed=0)
    b = copy.deepcopy(a)  # a "fine-tune": same embedding and head, other block weights
    with torch.no_grad():
        for layer in b.hf_model.model.layers:
            layer.mlp.down_proj.weight.add_(
                torch.randn(
                    layer.mlp.down_proj.weight.shape, generator=torch.Generator().manual_seed(1)
                )
                * 0.2
            )
    sad = [p for p in prompts if p.condition == "emotion:sad" and p.template == "incorrect"]
    readings = patch_readings(
        PatchArm("original", a), PatchArm("warm", b), sad, layers=[0, 2], batch_size=3
    )
    np.testing.assert_allclose(readings[(2, "all")], readings["source"], atol=1e-5)
    # batched by length, read back in prompt order: each prompt's own forced choice
    assert len({len(p.question) for p in sad}) > 1
    for name, model in (("target", b), ("source", a)):
        alone = score_prompts(Arm(name, "none", get_backend(model, "torch")), sad, batch_size=1)
        np.testing.assert_allclose(readings[name], alone["p_incorrect"], atol=1e-5)
    assert not np.allclose(readings[(0, "last")], readings["target"]), (
        "patching the last token at layer 0 changes something"
    )
    table = recovered_table(readings, sad, "original->warm", n_boot=50)
    assert tuple(table.columns) == PATCHING_COLUMNS
    row = table[(table.layer == 2) & (table.positions == "all")].iloc[0]
    assert row["recovered"] == pytest.approx(1.0, abs=1e-4) and row["n_items"] == len(
        {p.item_id for p in sad}
    )


def test_patching_with_a_system_prompt_stand_in_aligns_the_shared_suffix(tiny_llama, prompts):
    sad = [p for p in prompts if p.condition == "emotion:sad" and p.template == "incorrect"][:4]
    src, tgt = (
        PatchArm("original", tiny_llama),
        PatchArm("warm", tiny_llama, system="Be very warm and kind to the user."),
    )
    readings = patch_readings(src, tgt, sad, layers=[2], positions=("all", "last"), batch_size=4)
    np.testing.assert_allclose(readings[(2, "all")], readings["source"], atol=1e-5)
    # identical arms: patching changes nothing
    same = patch_readings(src, src, sad, layers=[1], positions=("all",), batch_size=4)
    np.testing.assert_allclose(same[(1, "all")], same["target"], atol=1e-6)


def test_verdict_table_and_sentence(tiny_llama, prompts):
    backend = get_backend(tiny_llama, "torch")
    d = tiny_llama.d_model
    warmth = Direction(
        "persona",
        "mean_diff",
        "resid_post",
        "last",
        (0, 1, 2),
        torch.randn(3, d, generator=torch.Generator().manual_seed(0)) * 3,
    )
    rnd = random_directions(warmth, 10, seed=0)
    system = "You are warm."
    arms = [
        Arm("original", "none", backend, None),
        Arm("warm", "none", backend, system),
        Arm(
            "warm",
            "ablate:persona",
            backend,
            system,
            (intervention_edits([Intervention("ablate", warmth, (0, 1, 2))]),),
        ),
        Arm(
            "warm",
            "ablate:random",
            backend,
            system,
            tuple(intervention_edits([Intervention("ablate", r, (0, 1, 2))]) for r in rnd[:2]),
        ),
        Arm(
            "original",
            "add:persona",
            backend,
            None,
            (intervention_edits([Intervention("add", warmth, (1,), alpha=1.0)], {1: 2.0}),),
        ),
    ]
    per_prompt = pd.concat([score_prompts(a, prompts, batch_size=8) for a in arms])
    assert set(per_prompt["condition"]) == set(CONDITIONS)
    requests = [("r1", "Hello"), ("r2", "How do I cook rice?"), ("r3", "I feel sad")]
    seen: list[list[str]] = []

    def score(replies):
        seen.append(list(replies))
        return np.array([float(i) for i in range(len(replies))])

    warmth_rows = pd.concat([score_warmth(a, requests, score, max_new_tokens=3) for a in arms])
    assert len(seen) == 6  # one generation per edit set: the random control has two
    table = verdict_table(per_prompt, warmth_rows, n_boot=50)
    assert tuple(table.columns) == VERDICT_COLUMNS
    ref = table[(table.model == "warm") & (table.intervention == "none")]
    assert ref["diff_vs_warm"].isna().all() and ref["p_value"].isna().all()
    abl = table[(table.intervention == "ablate:persona") & (table.measure == "error")]
    assert len(abl) == 4 and abl["p_value"].between(0, 1).all()
    agree = table[table.measure == "agrees_with_user"]
    assert set(agree["condition"]) == {"wrong belief", "sad + wrong belief"}
    w = table[(table.measure == "warmth") & (table.intervention == "ablate:random")].iloc[0]
    assert w["diff_vs_warm"] == pytest.approx(0.0)  # the scorer gives every arm the same scores
    sentence = verdict_sentence(table, ["persona"], "add:persona")
    assert "ablating persona" in sentence and "adding warmth" in sentence and sentence.endswith(".")
