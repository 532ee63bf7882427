"""Evaluation: forced-choice and generation tables, the refusal rule, summaries, the command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from interp.data.build import prompt_list
from interp.evaluate import error_value, forced_choice, generation, judge_grader, offline_grader
from interp.generate import SamplingConfig
from interp.grading import Grade
from interp.hooks import get_backend
from interp.summaries import HEADLINE_CELLS, condition_summary, format_ci, headline_summary


@pytest.fixture(scope="module")
def prompts():
    return prompt_list(conditions=("unmodified", "emotion:sad"), per_task=3)[0]


def test_forced_choice_table(tiny_llama, prompts):
    df = forced_choice(get_backend(tiny_llama, "torch"), prompts, batch_size=8)
    assert len(df) == len(prompts) and list(df["prompt_id"]) == [p.prompt_id for p in prompts]
    np.testing.assert_array_equal(df["error"], (df["lp_incorrect"] > df["lp_correct"]).astype(int))
    assert df["p_incorrect"].between(0, 1).all()
    belief = df["template"].isin(["incorrect", "doubt"])
    assert (
        df.loc[belief, "agrees_with_user"].notna().all()
        and df.loc[~belief, "agrees_with_user"].isna().all()
    )
    np.testing.assert_array_equal(df.loc[belief, "agrees_with_user"], df.loc[belief, "error"])


def test_error_value_follows_the_papers_refusal_rule():
    assert error_value(Grade("CORRECT", "", None), "general_knowledge") == 0.0
    assert error_value(Grade("INCORRECT", "", None), "medical") == 1.0
    assert np.isnan(error_value(Grade("REFUSAL", "", None), "medical"))
    assert error_value(Grade("REFUSAL", "", None), "disinformation") == 0.0
    assert np.isnan(error_value(Grade("UNSURE", "", None), "misconceptions"))


def test_generation_table_with_the_offline_grader(tiny_llama, prompts):
    few = prompts[:6]
    df = generation(
        get_backend(tiny_llama, "torch"),
        few,
        offline_grader,
        sampling=SamplingConfig(max_new_tokens=4, seed=1, batch_size=3),
    )
    assert len(df) == 6 and df["response"].map(type).eq(str).all()
    assert set(df["grade"]) <= {"CORRECT", "INCORRECT", "UNSURE", "REFUSAL"}
    again = generation(
        get_backend(tiny_llama, "torch"),
        few,
        offline_grader,
        sampling=SamplingConfig(max_new_tokens=4, seed=1, batch_size=3),
    )
    assert list(again["response"]) == list(df["response"]), "seeded sampling is reproducible"


def test_headline_summary_cells_and_cis():
    rng = np.random.default_rng(0)
    rows = []
    for item in range(40):
        for cond, template, p in (
            ("unmodified", "no_belief", 0.1),
            ("unmodified", "incorrect", 0.5),
            ("emotion:sad", "doubt", 0.6),
        ):
            err = float(rng.random() < p)
            rows.append(
                {
                    "item_id": f"i{item}",
                    "task": "general_knowledge",
                    "condition": cond,
                    "template": template,
                    "error": err,
                    "agrees_with_user": err if template != "no_belief" else np.nan,
                    "margin": 0.0,
                }
            )
    summary = headline_summary(pd.DataFrame(rows), n_boot=200)
    cells = dict(
        zip(
            summary.loc[summary.measure == "error", "cell"],
            summary.loc[summary.measure == "error", "mean"],
            strict=True,
        )
    )
    assert set(cells) == {"no belief", "wrong belief", "sad + wrong belief"}
    assert cells["no belief"] < cells["wrong belief"]
    assert (summary["ci_low"] <= summary["mean"]).all() and (
        summary["mean"] <= summary["ci_high"]
    ).all()
    assert {c[0] for c in HEADLINE_CELLS} >= set(summary["cell"])
    assert len(condition_summary(pd.DataFrame(rows), n_boot=50)) == 3
    assert format_ci(0.123, 0.08, 0.16) == "12.3% [8.0, 16.0]"


def test_eval_command_writes_results_meta_and_reuses_them(tmp_path, monkeypatch, capsys):
    from interp.cli import main
    from interp.commands import evaluate as command
    from interp.tiny_models import tiny_model

    monkeypatch.setattr(command, "load_model", lambda *a, **k: tiny_model("llama"))
    out = tmp_path / "eval"
    args = ["eval", "--per-task", "2", "--n-boot", "50", "--out", str(out), "--batch-size", "8"]
    assert main(args) == 0
    results = pd.read_csv(out / "results.csv")
    meta = json.loads((out / "meta.json").read_text())
    assert {"prompt_id", "item_id", "condition", "template", "error", "margin", "model"} <= set(
        results.columns
    )
    assert meta["stage"] == "eval" and meta["n_prompts"] == len(results) and meta["prompts_sha256"]
    assert "weights_hash" in meta and "versions" in meta
    printed = capsys.readouterr().out
    assert "sad + wrong belief" in printed and "%" in printed
    monkeypatch.setattr(command, "load_model", lambda *a, **k: pytest.fail("must reuse results"))
    assert main(args) == 0


def test_paired_contrasts_recover_a_planted_difference():
    from interp.summaries import paired_contrasts

    rows = []
    for item in range(60):
        base = item % 2  # half the items are always wrong
        for template, err in (("no_belief", base), ("incorrect", 1), ("doubt", 1)):
            rows.append(
                {
                    "item_id": f"i{item}",
                    "condition": "unmodified",
                    "template": template,
                    "error": float(err),
                    "margin": -float(err),
                }
            )
    table = paired_contrasts(pd.DataFrame(rows), n_boot=200)
    err = table[(table.contrast == "wrong belief - no belief") & (table.measure == "error")].iloc[0]
    assert err["n_items"] == 60 and err["diff"] == pytest.approx(0.5)
    assert err["ci_low"] < 0.5 < err["ci_high"]
    assert set(table["contrast"]) == {"wrong belief - no belief"}  # the other cells are absent


def test_eval_checks_its_inputs_before_loading_a_model(tmp_path, monkeypatch, capsys):
    from interp.cli import main
    from interp.commands import evaluate as command

    monkeypatch.setattr(command, "load_model", lambda *a, **k: pytest.fail("checks come first"))
    missing = tmp_path / "nowhere"
    assert main(["eval", "--prompts", str(missing), "--out", str(tmp_path / "o")]) == 2
    out = capsys.readouterr().out
    assert "prompts" in out and str(missing) in out
    for name in ("INTERP_JUDGE_URL", "OPENAI_BASE_URL", "INTERP_JUDGE_MODEL"):
        monkeypatch.delenv(name, raising=False)
    args = ["eval", "--mode", "generate", "--grader", "judge", "--out", str(tmp_path / "j")]
    assert main(args) == 2
    assert "INTERP_JUDGE_URL" in capsys.readouterr().out


def test_judge_grader_keeps_refusals_and_asks_the_judge_for_the_rest(prompts, tmp_path):
    class Judge:
        model = "fake-judge"
        max_workers = 1

        def __init__(self):
            self.asked = 0

        def complete(self, messages, **kwargs):
            self.asked += 1
            return "INCORRECT" if "Something else." in messages[-1]["content"] else "CORRECT"

    few = prompts[:3]
    replies = ["I cannot help with that.", "Paris, of course.", "Something else."]
    judge = Judge()
    grades = judge_grader(judge, tmp_path / "cache.jsonl", show_progress=False)(few, replies)
    offline = offline_grader(few, replies)
    assert grades[0].label == offline[0].label == "REFUSAL"
    assert [g.label for g in grades][1:] == ["CORRECT", "INCORRECT"]
    assert grades[1].reason.startswith("judge fake-judge: ") and judge.asked == 2
