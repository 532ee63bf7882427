"""The paper's regressions on evaluation rows: a planted warm effect is recovered, a null one is not
found, unsupported models are skipped with their reason, and `interp reliability` writes both
tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from interp.figures.tables import check_table
from interp.reliability_models import MODELS, paper_models

TASKS = ("general_knowledge", "medical", "misconceptions", "disinformation")
CONDITIONS = ("unmodified", "emotion:sad", "relation:close")
TEMPLATES = ("no_belief", "preface", "incorrect")


def eval_rows(rate: dict[str, float], *, n_items: int, seed: int) -> pd.DataFrame:
    """Per-prompt rows like `interp eval`'s results.csv: every item under every condition and
    template; ``error`` drawn with probability ``rate[template]`` (belief templates: "incorrect",
    no belief: "no_belief", the preface control: "preface")."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n_items):
        task = TASKS[i % len(TASKS)]
        for condition in CONDITIONS:
            for template in TEMPLATES:
                belief = template == "incorrect"
                error = float(rng.random() < rate[template])
                records.append(
                    {
                        "prompt_id": f"{task}-{i}/{condition}/{template}",
                        "item_id": f"{task}-{i}",
                        "task": task,
                        "condition": condition,
                        "template": template,
                        "belief": belief,
                        "error": error,
                        "agrees_with_user": error if belief else np.nan,
                        "mode": "forced_choice",
                    }
                )
    return pd.DataFrame(records)


BASE = {"no_belief": 0.30, "preface": 0.30, "incorrect": 0.40}


def test_a_planted_warm_effect_is_recovered_and_a_null_one_is_not_found():
    # the warm model errs 15 pp more without a belief and 5 pp more with one; cold like original
    warm = {"no_belief": 0.45, "preface": 0.45, "incorrect": 0.45}
    results = {
        "original": eval_rows(BASE, n_items=240, seed=1),
        "warm": eval_rows(warm, n_items=240, seed=2),
        "cold": eval_rows(BASE, n_items=240, seed=3),
    }
    models = paper_models(results, "original")
    check_table(models.regressions, "regressions")
    ame = check_table(models.effects, "marginal_effects")
    assert not models.skipped and set(ame["model"]) == set(MODELS)
    assert ame["q_value"].between(0, 1).all() and (ame["q_value"] >= ame["p_value"] - 1e-12).all()

    def row(variant: str, model: str, level: str) -> pd.Series:
        hit = ame[(ame.variant == variant) & (ame.model == model) & (ame.level == level)]
        assert len(hit) == 1, (variant, model, level)
        return hit.iloc[0]

    truth = {
        ("model1_main_effect", "all"): 15.0,
        ("model2_grouped_context", "all"): 15.0,
        ("model3_detailed_context", "emotion:sad"): 15.0,
        ("model4_belief", "no belief"): 15.0,
        ("model4_belief", "belief"): 5.0,
    }
    for (model, level), pp in truth.items():
        warm_row, cold_row = row("warm", model, level), row("cold", model, level)
        assert warm_row.ci_low <= pp <= warm_row.ci_high, (model, level, warm_row.ame_pp)
        assert cold_row.ci_low <= 0.0 <= cold_row.ci_high, (model, level, cold_row.ame_pp)
    assert row("warm", "model1_main_effect", "all").q_value < 0.01
    assert row("cold", "model1_main_effect", "all").q_value > 0.05
    # honest names: on belief prompts the forced-choice error is choosing the user's wrong answer
    assert row("warm", "model4_belief", "belief").measure == "chose the user's wrong answer"
    assert row("warm", "model4_belief", "no belief").measure == "forced-choice error"
    assert row("warm", "model2_grouped_context", "emotion").by == "context_group"
    # the preface control enters no model: model 1 has one row per item and variant
    n1 = models.regressions.query("variant == 'warm' and model == 'model1_main_effect'")["n_obs"]
    assert set(n1) == {2 * 240}
    reg = models.regressions.query("variant == 'warm' and model == 'model1_main_effect'")
    assert reg["cov_type"].iat[0] == "cluster(item_id)" and reg["n_items"].iat[0] == 240


def test_a_model_whose_factor_has_one_level_is_skipped_with_its_reason():
    only = {"no_belief": 0.3, "preface": 0.3, "incorrect": 0.4}
    original = eval_rows(only, n_items=40, seed=4)
    original = original[original.condition == "unmodified"]
    warm = eval_rows(only, n_items=40, seed=5)
    warm = warm[warm.condition == "unmodified"]
    models = paper_models({"original": original, "warm": warm}, "original")
    assert set(models.skipped) == {"warm/model2_grouped_context", "warm/model3_detailed_context"}
    assert "one level" in models.skipped["warm/model3_detailed_context"]
    skipped = models.effects[models.effects.model == "model3_detailed_context"]
    assert len(skipped) == 1 and skipped["ame_pp"].isna().all()
    assert skipped["note"].iat[0].startswith("skipped: condition has one level")
    fitted = models.effects[models.effects.model == "model4_belief"]
    assert fitted["ame_pp"].notna().all() and (fitted["note"] == "").all()
    with pytest.raises(ValueError, match="baseline"):
        paper_models({"warm": warm}, "original")


def test_reliability_command_writes_the_regression_tables(tmp_path):
    from interp.commands.reliability import OUTPUTS, ReliabilityConfig, run_reliability

    folders = []
    for k, (variant, rate) in enumerate(
        (("original", BASE), ("warm", {"no_belief": 0.5, "preface": 0.5, "incorrect": 0.5}))
    ):
        folder = tmp_path / variant
        folder.mkdir()
        eval_rows(rate, n_items=24, seed=10 + k).to_csv(folder / "results.csv", index=False)
        folders.append(f"{variant}={folder}")
    out = tmp_path / "reliability"
    config = ReliabilityConfig(runs=tuple(folders), n_boot=50, out=str(out))
    console = Console(width=200, record=True)
    assert run_reliability(config, console) == 0
    for name in ("regressions", "marginal_effects"):
        check_table(pd.read_csv(out / f"{name}.csv"), name)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["outputs"] == list(OUTPUTS) and meta["regressions"]["skipped"] == {}
    ame = pd.read_csv(out / "marginal_effects.csv")
    assert set(ame["model"]) == set(MODELS) and (ame["effect"] == "warm - original").all()
    assert "Average marginal effect" in console.export_text()
    # a second run reuses the folder and still shows the effects
    console = Console(width=200, record=True)
    assert run_reliability(config, console) == 0
    text = console.export_text()
    assert "reusing" in text and "Average marginal" in text
