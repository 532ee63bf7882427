"""Warmth per checkpoint: replies per checkpoint (tiny model), tidy tables, presets and config."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from interp.chat import Message
from interp.config import ConfigError
from interp.finetune import checkpoint_warmth as cw
from interp.finetune.examples import TrainingConversation, tokenize_all
from interp.finetune.presets import PRESETS, WarmthEvalPlan, get_preset
from interp.finetune.train import TrainConfig, train
from interp.generate import SamplingConfig, generate_replies
from interp.hooks import get_backend
from interp.warmth.pairs import ReplyTriple


def _triple(i: int, qtype: str) -> ReplyTriple:
    return ReplyTriple(f"{qtype}-{i:03d}", qtype, f"What about {qtype} {i}?", "n", "w", "c")


def test_select_requests_round_robin_over_types():
    held = [_triple(i, q) for q in ("advice", "factual", "creative") for i in range(3)]
    got = cw.select_requests(held, 4)
    assert [t.query_type for t in got] == ["advice", "creative", "factual", "advice"]
    assert len(cw.select_requests(held, None)) == 9


def test_checkpoint_replies_cached_and_epoch0_is_the_base_model(fresh_tiny_llama, tmp_path):
    loaded = fresh_tiny_llama
    requests = [_triple(i, "advice") for i in range(2)]
    convs = [[Message("user", t.request)] for t in requests]
    plan = WarmthEvalPlan(max_new_tokens=5, batch_size=2)
    base_replies = generate_replies(
        get_backend(loaded, "torch"), convs, SamplingConfig(max_new_tokens=5, temperature=0.0)
    )
    data = [
        TrainingConversation(
            f"c{i}", (Message("user", f"hi {i}"), Message("assistant", "Paris Paris Paris"))
        )
        for i in range(4)
    ]
    examples = tokenize_all(loaded.tokenizer, data, 64)
    cfg = TrainConfig(
        learning_rate=5e-2,
        effective_batch=2,
        micro_batch=2,
        epochs=2.0,
        checkpoint_epochs=(1.0,),
        lora_dropout=0.0,
    )
    model, result = train(loaded, examples, cfg, tmp_path / "run")
    replies = cw.checkpoint_replies(
        model, loaded, result.checkpoints, requests, plan, tmp_path / "w"
    )
    assert sorted(set(replies["epoch"])) == [0.0, 1.0, 2.0]
    assert list(replies[replies["epoch"] == 0]["reply"]) == base_replies
    assert list(replies[replies["epoch"] == 2]["reply"]) != base_replies
    stamp = {f: f.stat().st_mtime_ns for f in (tmp_path / "w").iterdir()}
    again = cw.checkpoint_replies(model, loaded, result.checkpoints, requests, plan, tmp_path / "w")
    assert again.equals(replies) and stamp == {
        f: f.stat().st_mtime_ns for f in (tmp_path / "w").iterdir()
    }
    # a merged copy answers as the adapter layers do, and leaves the model as it was
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    merged = cw.checkpoint_replies(
        model, loaded, result.checkpoints, requests, plan, tmp_path / "m", merged=True
    )
    assert merged.equals(replies)
    after = model.state_dict()
    assert weights.keys() == after.keys()
    assert all(torch.equal(v, after[k]) for k, v in weights.items())


def test_the_original_models_warmth_is_measured_once_and_shared(
    fresh_tiny_llama, tmp_path, monkeypatch
):
    """Two runs of one base model: the first measures epoch 0 (with the adapters off), the
    second reads it without generating; a run's replies at epoch 0 are the shared ones; another
    reply length is another measurement."""
    from interp.finetune import original_warmth as ow
    from interp.warmth.report import WarmthInstruments

    monkeypatch.setenv("INTERP_ARTIFACTS", str(tmp_path / "artifacts"))
    loaded = fresh_tiny_llama
    requests = [_triple(i, "advice") for i in range(3)]
    convs = [[Message("user", t.request)] for t in requests]
    plan = WarmthEvalPlan(max_new_tokens=5, batch_size=2)
    base_replies = generate_replies(
        get_backend(loaded, "torch"),
        convs,
        SamplingConfig(max_new_tokens=5, temperature=0.0, batch_size=2),
    )
    data = [
        TrainingConversation(
            f"c{i}", (Message("user", f"hi {i}"), Message("assistant", "Paris Paris Paris"))
        )
        for i in range(4)
    ]
    cfg = TrainConfig(
        learning_rate=5e-2, effective_batch=2, micro_batch=2, epochs=1.0, lora_dropout=0.0
    )
    model, result = train(loaded, tokenize_all(loaded.tokenizer, data, 64), cfg, tmp_path / "r")
    instruments = WarmthInstruments()  # lexical only
    replies, scores, reused = ow.original_warmth(model, loaded, requests, plan, instruments, False)
    assert not reused and replies["reply"].tolist() == base_replies
    assert set(scores["epoch"]) == {0.0} and set(scores["instrument"]) == {"lexical"}

    def no_generation(*a, **k):
        raise AssertionError("the second run generated the original model's replies again")

    with monkeypatch.context() as m:
        m.setattr(cw, "generate_replies", no_generation)
        again, again_scores, reused = ow.original_warmth(
            model, loaded, requests, plan, instruments, False
        )
        assert reused
        pd.testing.assert_frame_equal(again, replies, check_dtype=False)
        pd.testing.assert_frame_equal(again_scores, scores, check_dtype=False)
        with pytest.raises(AssertionError, match="generated"):
            ow.original_warmth(
                model,
                loaded,
                requests,
                WarmthEvalPlan(max_new_tokens=4, batch_size=2),
                instruments,
                False,
            )
    # the checkpoints' replies are generated; epoch 0's are the shared ones
    run = cw.checkpoint_replies(
        model, loaded, result.checkpoints, requests, plan, tmp_path / "w", original=again
    )
    assert run[run["epoch"] == 0]["reply"].tolist() == base_replies
    assert run[run["epoch"] == 1.0]["reply"].tolist() != base_replies


def test_warmth_tables_schema_and_paired_differences():
    rng = np.random.default_rng(0)
    rows = []
    for epoch, shift in ((0.0, 0.0), (1.0, 0.5), (2.0, 1.0)):
        for inst in ("embedding", "lexical"):
            for r in range(20):
                rows.append(
                    {
                        "epoch": epoch,
                        "request_id": f"q{r}",
                        "instrument": inst,
                        "score": r * 0.1 + shift + rng.normal(0, 0.01),
                        "se": np.nan,
                        "scorer": "x",
                    }
                )
    scores = pd.DataFrame(rows)
    by_epoch, vs = cw.warmth_tables(scores, "warm", n_boot=200)
    assert list(by_epoch.columns) == [
        "variant",
        "epoch",
        "instrument",
        "mean",
        "ci_low",
        "ci_high",
        "n",
    ]
    assert list(vs.columns) == [
        "variant",
        "epoch",
        "instrument",
        "diff",
        "ci_low",
        "ci_high",
        "n",
        "win_rate",
    ]
    assert set(by_epoch[by_epoch["epoch"] == 0]["variant"]) == {"original"}
    assert set(by_epoch[by_epoch["epoch"] > 0]["variant"]) == {"warm"}
    row = vs[(vs["epoch"] == 2.0) & (vs["instrument"] == "lexical")].iloc[0]
    assert (
        row["diff"] == pytest.approx(1.0, abs=0.02)
        and row["ci_low"] > 0.9
        and row["win_rate"] == 1.0
    )
    assert (by_epoch["ci_low"] <= by_epoch["mean"]).all() and (
        by_epoch["mean"] <= by_epoch["ci_high"]
    ).all()
    assert cw.sociot_epochs_for(WarmthEvalPlan(sociot_epochs="final"), [0.5, 2.0]) == [0.0, 2.0]
    assert cw.sociot_epochs_for(WarmthEvalPlan(sociot_epochs="none"), [0.5]) == []


def test_presets_and_config_overrides():
    from interp.commands.finetune import FinetuneConfig, resolve

    assert {"embedded-warm", "embedded-cold", "embedded-distill", "paper-warm"} <= set(PRESETS)
    paper = get_preset("paper-warm").train
    assert (
        paper.lora_r,
        paper.lora_alpha,
        paper.lora_dropout,
        paper.learning_rate,
        paper.max_length,
        paper.effective_batch,
        paper.epochs,
    ) == (8, 16, 0.1, 1e-5, 1024, 16, 10.0)
    with pytest.raises(ConfigError, match="unknown preset 'nope'; known presets: embedded-warm"):
        FinetuneConfig(preset="nope")
    with pytest.raises(ConfigError, match="sharegpt:PATH"):
        FinetuneConfig(data="elsewhere")
    preset, tcfg, plan = resolve(
        FinetuneConfig(preset="embedded-cold", epochs=1.0, n_requests=12, sociot="none")
    )
    assert (
        preset.variant == "cold"
        and tcfg.epochs == 1.0
        and tcfg.learning_rate == get_preset("embedded-cold").train.learning_rate
    )
    assert plan.n_requests == 12 and plan.sociot_epochs == "none"
    with pytest.raises(ConfigError, match="learning_rate"):
        TrainConfig(learning_rate=0)


def test_cli_registers_finetune_and_reports_bad_presets(capsys):
    from interp.cli import main

    with pytest.raises(SystemExit) as exit_info:  # a Literal option: argparse names the choices
        main(["finetune", "--preset", "nope"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nope'" in err and "embedded-warm" in err


def test_distill_targets_are_teacher_replies_without_the_system_prompt(
    tiny_llama, tmp_path, monkeypatch
):
    from interp.finetune import distill

    backend = get_backend(tiny_llama, "torch")
    sampling = SamplingConfig(max_new_tokens=4, temperature=0.0, batch_size=2)
    requests = [("r1", "advice", "How are you?"), ("r2", "other", "Tell me a story.")]
    convs = distill.distill_conversations(
        backend, requests, "Be warm.", sampling, tmp_path / "d.jsonl"
    )
    teacher = generate_replies(
        backend,
        [[Message("system", "Be warm."), Message("user", r[2])] for r in requests],
        sampling,
    )
    kept = [(r, t) for r, t in zip(requests, teacher, strict=True) if t.strip()]
    assert [c.messages for c in convs] == [
        (Message("user", r[2]), Message("assistant", t)) for r, t in kept
    ]

    def no_generation(*args, **kwargs):
        raise AssertionError("cached teacher replies were generated again")

    monkeypatch.setattr(distill, "generate_replies", no_generation)
    again = distill.distill_conversations(
        backend, requests, "Be warm.", sampling, tmp_path / "d.jsonl"
    )
    assert again == convs
