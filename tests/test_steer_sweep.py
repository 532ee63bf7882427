"""Layer runner and the prefix-reuse sweep: both must equal a plain forward / the naive sweep."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from interp.causal.layer_runner import LayerRunner
from interp.causal.readouts import build_rows, unit_table
from interp.causal.sweep import (
    BASELINE,
    SWEEP_COLUMNS,
    grid,
    run_naive,
    run_prefix_reuse,
    sweep_table,
)
from interp.data.build import prompt_list
from interp.directions import Direction
from interp.hooks import get_backend
from interp.steer import random_directions
from interp.warmth.pairs import load_split


@pytest.mark.parametrize("arch", ["llama", "mistral", "qwen2"])
def test_layer_runner_equals_the_model_forward(arch):
    from interp.tiny_models import tiny_model

    loaded = tiny_model(arch, n_layers=3)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 200, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :4] = 0
    mask[2, :1] = 0
    with torch.no_grad():
        ref = get_backend(loaded, "torch").forward(ids, mask)
        runner = LayerRunner(loaded)
        out = runner.forward(ids, mask)
        # split at every layer: prefix then suffix
        h = runner.embed_tokens(ids)
        prep = runner.prepare(mask, h)
        mid = runner.run(h, prep, 0, 2)
        split = runner.logits(runner.run(mid, prep, 2))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(split, ref, atol=1e-5, rtol=0)


def test_layer_runner_with_sliding_window_mistral():
    from transformers import AutoModelForCausalLM, MistralConfig

    from interp.models import LoadedModel, weights_fingerprint
    from interp.tiny_models import tiny_tokenizer

    tok = tiny_tokenizer()
    cfg = MistralConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        sliding_window=3,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg).eval()
    loaded = LoadedModel(
        name="sw", model=model, tokenizer=tok, weights_hash=weights_fingerprint(model)
    )
    ids = torch.randint(3, 100, (2, 10))
    mask = torch.ones_like(ids)
    mask[0, :3] = 0
    with torch.no_grad():
        ref = model(
            input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0)
        ).logits
        out = LayerRunner(loaded).forward(ids, mask)
    keep = mask.bool()
    torch.testing.assert_close(out[keep], ref[keep], atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def study(tiny_llama):
    prompts, _ = prompt_list(conditions=("unmodified", "emotion:sad"), per_task=2)
    triples = load_split().held_out[:3]
    return build_rows(tiny_llama.tokenizer, prompts[:24], triples)


def test_prefix_reuse_sweep_equals_the_naive_sweep(tiny_llama, study):
    d = tiny_llama.d_model
    planted = Direction(
        "planted",
        "mean_diff",
        "resid_post",
        "last",
        (0, 1, 2),
        torch.randn(3, d, generator=torch.Generator().manual_seed(2)),
    )
    settings = grid([planted], [0, 2], [-2.0, 0.0, 3.0])
    settings += grid([planted], [1], [1.5], op="ablate_add")
    norms = {0: 1.5, 1: 2.0, 2: 2.5}
    fast = run_prefix_reuse(tiny_llama, study.rows, settings, norms, batch_size=7)
    naive = run_naive(get_backend(tiny_llama, "torch"), study.rows, settings, norms, batch_size=5)
    assert set(fast.measured()) == set(naive.measured()) == {BASELINE, *(s.key for s in settings)}
    for key in fast.measured():
        lp_f, kl_f = fast.arrays(key)
        lp_n, kl_n = naive.arrays(key)
        np.testing.assert_allclose(lp_f, lp_n, atol=1e-4, rtol=1e-5, err_msg=str(key))
        np.testing.assert_allclose(kl_f, kl_n, atol=1e-5, err_msg=str(key))
    lp0, kl0 = fast.arrays(("planted", 2, 0.0))
    lpb, _ = fast.arrays(BASELINE)
    assert np.array_equal(lp0, lpb) and np.all(kl0 == 0)
    lp3, kl3 = fast.arrays(("planted", 2, 3.0))
    assert np.all(kl3 > 0) and not np.allclose(lp3, lpb)
    # batched by length, read back in row order: each row's reading is its own forward's
    rows = study.rows
    assert sorted(len(r) for r in rows.ids) != [len(r) for r in rows.ids]
    for r in range(len(rows)):
        ids = torch.tensor([rows.ids[r]])
        with torch.no_grad():
            logp = torch.log_softmax(tiny_llama.hf_model(ids).logits[0].float(), dim=-1)
        first = rows.start[r]
        alone = sum(float(logp[first + j, t]) for j, t in enumerate(rows.targets[r]))
        assert lpb[r] == pytest.approx(alone, abs=1e-4), r


def test_sweep_table_columns_nulls_and_unit_metrics(tiny_llama, study):
    planted = Direction(
        "planted",
        "mean_diff",
        "resid_post",
        "last",
        (1,),
        torch.randn(1, tiny_llama.d_model, generator=torch.Generator().manual_seed(4)),
    )
    settings = grid([planted], [1], [0.0, 4.0])
    nulls = grid(random_directions(planted, 10, seed=0), [1], [0.0, 4.0])
    readings = run_prefix_reuse(tiny_llama, study.rows, settings + nulls, {1: 2.0}, batch_size=16)
    table = sweep_table(study, readings, settings, nulls, n_boot=50)
    assert tuple(table.columns) == SWEEP_COLUMNS
    assert set(table["metric"]) == {"p_agree", "error", "kl_first_token", "heldout_loss"}
    cell = table[(table.direction == "planted") & (table.alpha == 4.0)].set_index("metric")
    assert cell["null_low"].notna().all() and (cell["null_low"] <= cell["null_high"]).all()
    assert (cell["ci_low"] <= cell["mean"]).all() and (cell["mean"] <= cell["ci_high"]).all()
    base = table[table.direction == "none"].set_index("metric")
    assert base.loc["kl_first_token", "mean"] == 0.0
    assert np.isnan(base.loc["kl_first_token", "null_low"])
    units = unit_table(study, *readings.arrays(BASELINE))
    assert isinstance(units, pd.DataFrame)
    assert (units[units.metric == "heldout_loss"]["value"] > 0).all()
    assert units[units.metric == "p_agree"]["value"].between(0, 1).all()


def test_the_sweep_measures_continuation_kl_and_the_warmth_null_at_every_alpha(tiny_llama):
    """The whole sweep on the tiny model: KL over the continuation (0 unsteered and at alpha 0,
    above 0 when steered), the first-token KL beside it, and warmth with a null band at every
    alpha from the random directions' own greedy replies."""
    from interp.causal.sweep import steering_sweep

    prompts, _ = prompt_list(conditions=("unmodified", "emotion:sad"), per_task=2)
    split = load_split()
    planted = Direction(
        "planted",
        "mean_diff",
        "resid_post",
        "last",
        (1,),
        torch.randn(1, tiny_llama.d_model, generator=torch.Generator().manual_seed(5)),
    )
    scored: list[list[str]] = []

    def warmth(replies: list[str]) -> np.ndarray:  # a stand-in instrument: reply length
        scored.append(replies)
        return np.array([len(r) / 40 for r in replies], dtype=float)

    alphas = (-3.0, 0.0, 3.0)
    result = steering_sweep(
        tiny_llama,
        None,
        prompts[:24],
        (split.train[:4], split.held_out[:4]),
        [planted],
        layers=(1,),
        alphas=alphas,
        op="add",
        null_alphas=alphas,
        n_random=3,
        seed=0,
        batch_size=8,
        n_boot=20,
        warmth=warmth,
        n_requests=2,
        max_new_tokens=4,
        warmth_random=2,
    )
    table = result.table
    assert tuple(table.columns) == SWEEP_COLUMNS and result.n_warmth_null == 2
    assert {"kl_continuation", "kl_first_token", "warmth"} <= set(table["metric"])
    # warmth: 1 unsteered + 3 alphas for the direction + 2 random directions x 3 alphas
    assert len(scored) == 1 + 3 + 2 * 3
    kl = table[table.metric == "kl_continuation"].set_index(["direction", "alpha"])
    assert kl.loc[("none", 0.0), "mean"] == 0.0
    assert abs(kl.loc[("planted", 0.0), "mean"]) < 1e-6
    assert kl.loc[("planted", 3.0), "mean"] > 1e-4 and kl.loc[("planted", -3.0), "mean"] > 1e-4
    for metric in ("kl_continuation", "warmth", "p_agree"):
        rows = table[(table.metric == metric) & (table.direction == "planted")]
        assert sorted(rows["alpha"]) == sorted(alphas), metric
        assert rows["null_low"].notna().all() and (rows["null_low"] <= rows["null_high"]).all()
    # the settings' replies were generated stacked in one batch: each equals the setting alone
    from interp.causal.arms import greedy_replies
    from interp.steer import Intervention, steered

    backend = get_backend(tiny_llama, "torch")
    requests = [t.request for t in split.held_out[:2]]
    for alpha in (-3.0, 3.0):
        iv = Intervention("add", planted, (1,), alpha=alpha)
        with steered(backend, [iv], result.norms, phase="generate"):
            alone = greedy_replies(backend, requests, None, 4)
        mine = result.replies
        mine = mine[(mine.direction == "planted") & (mine.alpha == alpha)]["replies"]
        assert list(mine) == alone


def test_warmth_null_band_is_the_random_directions_range_at_the_same_layer_and_alpha():
    from interp.causal.sweep import with_warmth_null

    cols = ["direction", "layer", "alpha", "metric", "mean", "ci_low", "ci_high"]
    warmth = pd.DataFrame(
        [["none", -1, 0.0, "warmth", 0.5, 0.4, 0.6], ["d", 1, 1.0, "warmth", 0.7, 0.6, 0.8],
         ["d", 1, 2.0, "warmth", 0.9, 0.8, 1.0]], columns=cols,
    )  # fmt: skip
    null = pd.DataFrame(
        [["random0", 1, 1.0, "warmth", 0.2, 0.2, 0.2], ["random1", 1, 1.0, "warmth", 0.6, 0.6, 0.6],
         ["random0", 2, 2.0, "warmth", 0.3, 0.3, 0.3]], columns=cols,
    )  # fmt: skip
    out = with_warmth_null(warmth, null).set_index("alpha")
    assert out.loc[1.0, "null_low"] == pytest.approx(0.21)
    assert out.loc[1.0, "null_high"] == pytest.approx(0.59)
    assert np.isnan(out.loc[2.0, "null_low"]) and np.isnan(out.loc[0.0, "null_high"])


def test_causal_inputs_split_prompts_and_find_direction_folders(tmp_path):
    from interp.causal.inputs import named_directions, study_prompts
    from interp.commands.steer import CausalConfig
    from interp.config import ConfigError
    from interp.directions import find_direction_folders

    evaluation, held_back = study_prompts(per_task=2)
    assert {p.item_id for p in evaluation}.isdisjoint({p.item_id for p in held_back})
    assert len({p.item_id for p in evaluation}) == 8
    d = Direction("persona", "mean_diff", "resid_post", "last", (0, 1), torch.ones(2, 4))
    d.save(tmp_path / "run" / "persona-mean_diff")
    assert find_direction_folders([str(tmp_path / "run")]) == [
        tmp_path / "run" / "persona-mean_diff"
    ]
    assert [x.name for x in named_directions([tmp_path / "run"], ["persona"], [1])] == ["persona"]
    with pytest.raises(ConfigError, match="no direction named"):
        named_directions([tmp_path / "run"], ["sycophancy"], [1])
    with pytest.raises(FileNotFoundError, match="no Direction folder"):
        find_direction_folders([str(tmp_path)])
    with pytest.raises(ConfigError, match="n_random"):
        CausalConfig(n_random=3)


def test_steer_names_a_bad_direction_folder_before_loading_a_model(tmp_path, monkeypatch, capsys):
    from interp.cli import main
    from interp.commands import steer

    def no_load(*a, **k):
        raise AssertionError("the model must not load before the inputs are checked")

    monkeypatch.setattr(steer, "load_model", no_load)
    monkeypatch.setattr(steer, "load_pair", no_load)

    def said() -> str:  # rich wraps long lines; compare the words
        return "".join(capsys.readouterr().out.split())

    assert main(["steer", "hi", "--direction", str(tmp_path), "--layer", "1"]) == 2
    out = said()
    assert str(tmp_path) in out and "meta.json" in out and "Errno" not in out
    assert main(["ablate", "--directions", str(tmp_path / "missing")]) == 2
    assert "missingisnotafolder" in said()
    assert main(["ablate"]) == 2
    assert "--fallback-directions" in said()
