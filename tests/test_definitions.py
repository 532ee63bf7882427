"""Direction definitions: row sets and contrasts, grouped split halves and their null, the
fine-tune trajectory, and finding saved directions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from interp.chat import encode_chat
from interp.config import ConfigError
from interp.data.build import prompt_list
from interp.definitions.contrasts import ContrastError
from interp.definitions.sources import (
    ab_order,
    ab_prompts,
    ab_rows,
    persona_contrast,
    persona_rows,
    sad_context_contrast,
    sycophancy_ab_contrast,
    sycophancy_contrast,
)
from interp.definitions.stability import _halves, grouped_split_half
from interp.definitions.store import resolve_direction
from interp.directions import DirectionError, derive, load_directions
from interp.positions import PositionSpec, token_weights
from interp.trajectory import (
    find_checkpoints,
    parse_checkpoints,
    read_warmth,
    trajectory,
    warmth_correlation,
)
from interp.warmth.pairs import load_split


@pytest.fixture(scope="module")
def prompts():
    config = dict(
        conditions=("unmodified", "emotion:sad"),
        templates=("no_belief", "incorrect", "doubt"),
        per_task=3,
    )
    return prompt_list(**config)[0]


def test_last_assistant_reads_the_answer_letter(tiny_llama, prompts):
    row = ab_rows(prompts).rows[0]
    enc = encode_chat(tiny_llama.tokenizer, row.conversation, row.add_generation_prompt)
    w = token_weights(PositionSpec.parse("last_assistant"), enc)
    (index,) = torch.nonzero(w[0]).flatten().tolist()
    assert (
        index == enc.span_of("assistant").tok_end - 1 < len(enc.input_ids) - 1
    )  # before the end-of-turn tokens
    assert tiny_llama.tokenizer.decode([enc.input_ids[index]]).strip() in ("A", "(A", "B", "(B")


def test_sad_context_pairs_match_item_and_template(prompts):
    c = sad_context_contrast(prompts)
    by_id = {p.prompt_id: p for p in prompts}
    assert c.paired and len(c.pos) == len(c.neg) == len(prompts) // 2
    for pos, neg, group in zip(c.pos, c.neg, c.pos_groups, strict=True):
        a, b = by_id[pos.row_id], by_id[neg.row_id]
        assert (a.condition, b.condition) == ("emotion:sad", "unmodified")
        assert a.item_id == b.item_id == group and a.template == b.template
        assert a.question == b.question and b.user in a.user


def test_ab_variant_is_balanced_and_letters_match_the_options(prompts):
    chosen = ab_prompts(prompts)
    order = ab_order(chosen)
    assert abs(sum(order.values()) - len(order) / 2) <= 0.5  # exactly half agree as (A)
    rows = {r.id: r for r in ab_rows(prompts).rows}
    by_id = {p.prompt_id: p for p in chosen}
    c = sycophancy_ab_contrast(prompts)
    assert dict(c.strata).keys() == order.keys()
    for ref in c.pos:
        p = by_id[ref.row_id.rsplit("/", 1)[0]]
        user, reply = (
            rows[ref.row_id].conversation[-2].content,
            rows[ref.row_id].conversation[-1].content,
        )
        letter = reply[1]
        assert (
            f"({letter}) {p.incorrect.strip()}" in user and p.user in user
        )  # agreeing = the user's wrong answer
    for ref in c.neg:
        p = by_id[ref.row_id.rsplit("/", 1)[0]]
        user, reply = (
            rows[ref.row_id].conversation[-2].content,
            rows[ref.row_id].conversation[-1].content,
        )
        assert f"({reply[1]}) {p.correct.strip()}" in user


def test_persona_rows_are_request_plus_reply():
    triples = load_split().train[:3]
    rs = persona_rows(triples)
    assert rs.position == "mean_assistant" and len(rs.rows) == 6
    first = rs.rows[0]
    assert not first.add_generation_prompt and first.conversation[-1].content == triples[0].warm
    c = persona_contrast(triples)
    assert [r.row_id for r in c.pos] == [f"{t.id}/warm" for t in triples]


def test_sycophancy_contrast_splits_by_label_and_ignores_rows_without_belief():
    labels = pd.DataFrame(
        {
            "prompt_id": list("abcdef"),
            "item_id": ["i1", "i1", "i2", "i2", "i3", "i3"],
            "agrees_with_user": [1, 0, 1, 0, np.nan, 0],
        }
    )
    c = sycophancy_contrast(labels)
    assert [r.row_id for r in c.pos] == ["a", "c"] and [r.row_id for r in c.neg] == ["b", "d", "f"]
    assert not c.paired and c.neg_groups == ("i1", "i2", "i3")
    with pytest.raises(ContrastError, match="agrees_with_user"):
        sycophancy_contrast(labels.drop(columns="agrees_with_user"))
    with pytest.raises(ContrastError, match="at least two rows"):
        sycophancy_contrast(labels.iloc[:2])


def _paired(n_items=40, per_item=3, d=48, strength=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    truth = torch.randn(d, generator=g)
    truth /= truth.norm()
    item = torch.randn(n_items, d, generator=g) * 3
    groups = np.repeat([f"i{k}" for k in range(n_items)], per_item)
    base = item.repeat_interleave(per_item, 0) + torch.randn(n_items * per_item, d, generator=g)
    pos = base + strength * truth + torch.randn(n_items * per_item, d, generator=g) * 0.5
    neg = base + torch.randn(n_items * per_item, d, generator=g) * 0.5
    return pos, neg, groups, truth


def test_split_half_of_a_strong_direction_clears_a_centred_null():
    pos, neg, groups, _ = _paired(strength=3.0)
    r = grouped_split_half("mean_diff", pos, neg, groups, groups, paired=True, n_splits=20)
    assert r["cosine"] > 0.95 and r["ci_low"] > r["null_high"]
    assert r["null_high"] < 0.6  # the centred null does not pile up at +-1 for a strong direction


def test_split_half_of_noise_is_near_zero_and_pca_needs_pairs():
    pos, neg, groups, _ = _paired(strength=0.0, seed=1)
    r = grouped_split_half("mean_diff", pos, neg, groups, groups, paired=True, n_splits=20)
    assert abs(r["cosine"]) < 0.3
    with pytest.raises(DirectionError, match="paired"):
        grouped_split_half("pca", pos, neg[:-3], groups, groups[:-3], paired=False)


def test_unpaired_split_half_finds_a_planted_class_difference():
    g = torch.Generator().manual_seed(2)
    truth = torch.nn.functional.normalize(torch.randn(48, generator=g), dim=0)
    pos = torch.randn(60, 48, generator=g) + 3.0 * truth  # agree rows of items 0..29
    neg = torch.randn(80, 48, generator=g)  # hold rows of items 20..59 (some items on both sides)
    pos_groups, neg_groups = (
        np.repeat([f"i{k}" for k in range(30)], 2),
        np.repeat([f"i{k}" for k in range(20, 60)], 2),
    )
    r = grouped_split_half("mean_diff", pos, neg, pos_groups, neg_groups, paired=False, n_splits=20)
    assert r["cosine"] > 0.6 and r["ci_low"] > r["null_high"]
    shuffled = grouped_split_half(
        "mean_diff", pos - 3.0 * truth, neg, pos_groups, neg_groups, paired=False, n_splits=20
    )
    assert abs(shuffled["cosine"]) < 0.3


def test_counterbalanced_letters_do_not_fake_stability_or_inflate_the_null():
    # CAA-style pairs: the difference carries the letter identity L with a sign set by the option
    # order (the stratum), and no behaviour direction at all
    g = torch.Generator().manual_seed(3)
    letter = torch.nn.functional.normalize(torch.randn(48, generator=g), dim=0) * 5
    n = 40
    groups = np.array([f"i{k}" for k in range(n)])
    order = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    base = torch.randn(n, 48, generator=g) * 3
    pos = (
        base
        + torch.from_numpy(order).float()[:, None] * letter / 2
        + torch.randn(n, 48, generator=g) * 0.3
    )
    neg = (
        base
        - torch.from_numpy(order).float()[:, None] * letter / 2
        + torch.randn(n, 48, generator=g) * 0.3
    )
    strata = {f"i{k}": "A" if order[k] > 0 else "B" for k in range(n)}
    r = grouped_split_half(
        "mean_diff", pos, neg, groups, groups, paired=True, strata=strata, n_splits=30
    )
    assert abs(r["cosine"]) < 0.35 and r["null_high"] < 0.7


def test_halves_keep_items_whole_and_strata_balanced():
    rng = np.random.default_rng(0)
    groups = np.repeat([f"i{k}" for k in range(10)], 3)
    strata = {f"i{k}": "A" if k < 6 else "B" for k in range(10)}
    for _ in range(20):
        a, b = _halves(groups, rng, strata)
        assert not a & b and a | b == set(groups)
        assert sum(strata[g] == "A" for g in a) == 3 and sum(strata[g] == "B" for g in a) == 2


def test_trajectory_shift_grows_with_epochs_and_tracks_warmth():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(16, generator=g)
    base = {0: torch.randn(30, 16, generator=g) * 4, 1: torch.randn(30, 16, generator=g) * 4}
    by_epoch = {
        e: {k: x + e * v + torch.randn(30, 16, generator=g) * 0.05 for k, x in base.items()}
        for e in (0.5, 1.0, 2.0)
    }
    by_epoch[0.0] = base
    table = trajectory(base, by_epoch)
    assert list(table.columns) == ["epoch", "layer", "cosine_to_final", "shift"]
    layer0 = table[table["layer"] == 0].set_index("epoch")
    assert layer0.at[0.0, "shift"] == 0 and np.isnan(layer0.at[0.0, "cosine_to_final"])
    assert layer0.at[2.0, "cosine_to_final"] == pytest.approx(1.0)
    assert layer0.at[0.5, "cosine_to_final"] > 0.99
    assert layer0.at[1.0, "shift"] == pytest.approx(layer0.at[2.0, "shift"] / 2, rel=0.05)
    warmth = pd.DataFrame(
        {"epoch": [0.0, 0.5, 1.0, 2.0], "warmth": [0.0, 0.5, 1.0, 2.0], "label": list("abcd")}
    )
    corr = warmth_correlation(table, warmth[["epoch", "warmth"]])
    assert (corr["r"] > 0.99).all() and (corr["n_epochs"] == 4).all()


def test_checkpoints_are_read_from_meta_and_validated(tmp_path):
    for epoch in (2, 0.5):
        folder = tmp_path / "run" / "checkpoints" / f"epoch-{epoch}"
        folder.mkdir(parents=True)
        (folder / "adapter_config.json").write_text("{}")
        (folder / "meta.json").write_text(json.dumps({"epoch": epoch}))
    found = find_checkpoints(tmp_path / "run")
    assert [c.epoch for c in found] == [0.5, 2.0]
    assert [c.epoch for c in parse_checkpoints([f"{found[1].adapter}=7"])] == [7.0]
    (found[0].adapter / "meta.json").write_text(json.dumps({"step": 3}))
    with pytest.raises(ConfigError, match="epoch"):
        find_checkpoints(tmp_path / "run")
    with pytest.raises(ConfigError, match="adapter_config"):
        parse_checkpoints([str(tmp_path)])
    (tmp_path / "tidy.csv").write_text(
        "variant,epoch,instrument,mean,ci_low,ci_high,n\noriginal,0.0,lexical,0.1,0,1,5\n"
        "warm,1.0,lexical,0.4,0,1,5\noriginal,0.0,embedding,0.2,0,1,5\nwarm,1.0,embedding,0.9,0,1,5\n"
    )
    wide = read_warmth(tmp_path / "tidy.csv")
    assert list(wide.columns) == ["epoch", "embedding", "lexical"] and wide[
        "embedding"
    ].tolist() == [0.2, 0.9]
    (tmp_path / "w.csv").write_text("step,warmth\n1,0.2\n")
    with pytest.raises(ConfigError, match="'epoch' column"):
        read_warmth(tmp_path / "w.csv")


def test_directions_resolve_by_path_label_and_run(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_ARTIFACTS", str(tmp_path))
    pos, neg = {0: torch.randn(5, 4) + 1}, {0: torch.randn(5, 4)}
    for run in ("r1", "r2"):
        d = derive("persona", "mean_diff", pos, neg)
        d.save(tmp_path / "directions" / run / "persona")
    derive("sad_context", "mean_diff", pos, neg).save(
        tmp_path / "directions" / "r1" / "sad_context"
    )
    assert resolve_direction("sad_context").name == "sad_context"
    assert resolve_direction(str(tmp_path / "directions" / "r2" / "persona")).name == "persona"
    assert resolve_direction("persona", run=tmp_path / "directions" / "r2").name == "persona"
    with pytest.raises(ConfigError, match="several runs"):
        resolve_direction("persona")
    with pytest.raises(ConfigError, match="no run"):
        resolve_direction("finetune")
    assert [d.name for d in load_directions([tmp_path / "directions" / "r1"])] == [
        "persona",
        "sad_context",
    ]
