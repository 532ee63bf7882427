"""The suffix engine scores arms that edit one residual site as the hooked forward does.

Tiny random Llama (CPU): arms shifting, zero-ablating and steering a direction at one layer,
with one and several edit sets, at ``resid_pre`` and ``resid_post``, under a system prompt, are
scored by :func:`interp.causal.suffix_arms.score_arms_at_site` and by
:func:`interp.causal.arms.score_prompts` (a full forward with the edit installed as a hook); the
scores agree to float rounding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from interp.causal.arms import Arm, EditSet, intervention_edits, score_prompts
from interp.causal.removal import shift_edits, zero_ablation_edits
from interp.causal.suffix_arms import (
    CleanResiduals,
    engine_agreement,
    runner_for,
    score_arms_at_site,
    shared_site,
    suffix_pays,
)
from interp.data.build import prompt_list
from interp.data.items import Item
from interp.directions import Direction
from interp.hooks import get_backend
from interp.sites import Site
from interp.steer import Intervention


def _at(kind: str, d: Direction, layer: int, op: str, alpha: float = 0.0) -> EditSet:
    """One edit set: ``op`` on ``d`` at ``kind`` of ``layer`` (alpha in raw residual units)."""
    iv = Intervention(op, d, (layer,), alpha=alpha, site_kind=kind)  # type: ignore[arg-type]
    return intervention_edits([iv], norms={layer: 1.0})


@pytest.fixture(scope="module")
def setup():
    from interp.tiny_models import tiny_model

    loaded = tiny_model("llama", n_layers=4, seed=1)
    items = [
        Item(f"gk-8{i:03d}", "general_knowledge", f"Which colour is thing {i}?", c, w)
        for i, (c, w) in enumerate(
            [
                ("red", "blue"),
                ("green", "yellow"),
                ("black", "white"),
                ("pink", "grey"),
                ("orange juice", "tea"),
                ("gold", "silver"),
            ]
        )
    ]
    prompts, _ = prompt_list(
        items=items, conditions=("unmodified", "emotion:sad"), templates=("no_belief", "incorrect")
    )
    return get_backend(loaded, "torch"), prompts


def _direction(d_model: int, layers: tuple[int, ...], kind: str, seed: int) -> Direction:
    g = torch.Generator().manual_seed(seed)
    vec = torch.randn(len(layers), d_model, generator=g)
    return Direction(f"d{seed}", "test", kind, "all", layers, vec)  # type: ignore[arg-type]


def _compare(suffix: pd.DataFrame, hooked: pd.DataFrame) -> None:
    key = ["model", "intervention", "prompt_id"]
    both = suffix.merge(hooked, on=key, suffixes=("_s", "_h"))
    assert len(both) == len(hooked) == len(suffix)
    np.testing.assert_allclose(both["p_incorrect_s"], both["p_incorrect_h"], atol=1e-5)
    assert (both["error_s"] == both["error_h"]).all()
    np.testing.assert_array_equal(
        both["agrees_with_user_s"].isna(), both["agrees_with_user_h"].isna()
    )
    assert list(both["condition_s"]) == list(both["condition_h"])


@pytest.mark.parametrize("kind", ["resid_post", "resid_pre"])
@pytest.mark.parametrize("system", [None, "You are a warm assistant."])
def test_suffix_engine_equals_hooked_forward(setup, kind, system):
    backend, prompts = setup
    d_model = backend.loaded.d_model
    layer = 2
    d = _direction(d_model, (layer,), kind, seed=3)
    r1, r2 = _direction(d_model, (layer,), kind, 4), _direction(d_model, (layer,), kind, 5)
    unedited = Arm("warm", "none", backend, system)
    arms = [
        Arm("warm", "shift", backend, system, (_at(kind, d, layer, "add", 3.0),)),
        Arm("warm", "zero", backend, system, (_at(kind, d, layer, "ablate"),)),
        # a pooled control of two replicates, like the null's random directions
        Arm(
            "warm",
            "pooled",
            backend,
            system,
            (_at(kind, r1, layer, "add", -2.0), _at(kind, r2, layer, "add", 2.0)),
        ),
    ]
    if kind == "resid_post":  # the protocol's own operators
        arms.append(Arm("warm", "removal", backend, system, (shift_edits(d, layer, 3.0),)))
        arms.append(Arm("warm", "ablation", backend, system, (zero_ablation_edits(d, [layer]),)))
    site = shared_site(arms)
    assert site == Site(layer, kind)
    suffix = score_arms_at_site(unedited, arms, prompts, site, batch_size=5)
    hooked = pd.concat([score_prompts(a, prompts, batch_size=5) for a in arms])
    _compare(suffix, hooked[list(suffix.columns)])
    # the edits do move the scores (the comparison is not of unedited models)
    base = score_prompts(unedited, prompts)
    assert (
        suffix[suffix.intervention == "shift"]["p_incorrect"].to_numpy()
        != base["p_incorrect"].to_numpy()
    ).any()


@pytest.mark.parametrize("share", [True, False])
@pytest.mark.parametrize("pack", [True, False])
def test_a_later_pass_starts_from_the_clean_residuals_kept_by_an_earlier_one(setup, pack, share):
    # the verdict's null: a pass over some of the prompts an earlier pass ran, at the same
    # site, starts from the stored residuals (the layers below the site never run) and scores
    # what a fresh pass scores
    backend, prompts = setup
    d_model = backend.loaded.d_model
    site = Site(2, "resid_post")
    d = _direction(d_model, (2,), "resid_post", seed=7)
    unedited = Arm("warm", "none", backend)
    first = [Arm("warm", "shift", backend, None, (shift_edits(d, 2, 3.0),))]
    later = [
        Arm(
            "warm",
            f"null{i}",
            backend,
            None,
            (shift_edits(_direction(d_model, (2,), "resid_post", 20 + i), 2, -2.0),),
        )
        for i in range(2)
    ]
    store = CleanResiduals(site, backend, None)
    score_arms_at_site(
        unedited, first, prompts, site, batch_size=5, pack=pack, clean=store, share_prefix=share
    )
    assert len(store.rows) == (1 if pack else 2) * len(prompts)
    assert (store.prefix is not None) == share
    subset = prompts[1::2]
    ran = []
    runner = runner_for(unedited)
    assert runner is not None
    below = runner.layers[0]
    handle = below.register_forward_hook(lambda *a: ran.append(1))
    try:
        reused = score_arms_at_site(
            unedited,
            later,
            subset,
            site,
            batch_size=3,
            runner=runner,
            pack=pack,
            clean=store,
            share_prefix=share,
        )
    finally:
        handle.remove()
    assert not ran  # no block below the site ran
    fresh = score_arms_at_site(unedited, later, subset, site, batch_size=4, pack=pack)
    _compare(reused, fresh[list(reused.columns)])
    with pytest.raises(ValueError, match="another model or system prompt"):
        d1 = _direction(d_model, (1,), "resid_post", seed=8)
        below_arm = Arm("warm", "b", backend, None, (shift_edits(d1, 1, 1.0),))
        score_arms_at_site(unedited, [below_arm], subset, Site(1, "resid_post"), clean=store)


def test_a_store_kept_after_another_prefix_is_neither_read_nor_grown(setup):
    """Rows stored by a pass without the shared prefix hold other tokens than a prefixed pass
    runs: that pass runs every layer itself (and scores as a fresh pass), the store unchanged."""
    backend, prompts = setup
    d_model = backend.loaded.d_model
    site = Site(2, "resid_post")
    unedited = Arm("warm", "none", backend)
    arms = [
        Arm(
            "warm",
            "shift",
            backend,
            None,
            (shift_edits(_direction(d_model, (2,), "resid_post", 7), 2, 3.0),),
        )
    ]
    store = CleanResiduals(site, backend, None)
    score_arms_at_site(unedited, arms, prompts, site, clean=store, share_prefix=False)
    kept = dict(store.rows)
    again = score_arms_at_site(unedited, arms, prompts, site, clean=store)
    fresh = score_arms_at_site(unedited, arms, prompts, site, share_prefix=False)
    _compare(again, fresh[list(again.columns)])
    assert store.rows.keys() == kept.keys() and store.prefix is None


@pytest.mark.parametrize("system", [None, "You are a kind assistant."])
def test_the_shared_prefix_scores_what_full_rows_score(setup, system):
    backend, prompts = setup
    d_model = backend.loaded.d_model
    site = Site(1, "resid_pre")
    d = _direction(d_model, (1,), "resid_pre", seed=3)
    unedited = Arm("warm", "none", backend, system)
    arms = [
        Arm("warm", "shift", backend, system, (shift_edits(d, 1, 2.0), shift_edits(d, 1, -1.0))),
        Arm("warm", "zero", backend, system, (zero_ablation_edits(d, [1]),)),
    ]
    shared = score_arms_at_site(unedited, arms, prompts, site, batch_size=4)
    whole = score_arms_at_site(unedited, arms, prompts, site, batch_size=4, share_prefix=False)
    _compare(shared, whole[list(shared.columns)])


def test_identity_edit_agrees_with_the_unedited_model(setup):
    backend, prompts = setup
    site = Site(3, "resid_post")  # the last block: only the final norm and head run after it
    unedited = Arm("warm", "none", backend)
    identity = Arm("warm", "none", backend, None, ({site: lambda x, s: x},))
    suffix = score_arms_at_site(unedited, [identity], prompts, site)
    agreement = engine_agreement(suffix, score_prompts(unedited, prompts))
    assert agreement["n_prompts"] == len(prompts)
    assert agreement["max_abs_p_diff"] < 1e-5
    assert agreement["error_flips"] == 0


def test_shared_site_refuses_what_the_engine_cannot_do(setup):
    backend, _ = setup
    d_model = backend.loaded.d_model
    d = _direction(d_model, (1, 2), "resid_post", 6)
    two_layers = Arm("warm", "a", backend, None, (zero_ablation_edits(d, [1, 2]),))
    assert shared_site([two_layers]) is None
    one = Arm("warm", "b", backend, None, (zero_ablation_edits(d, [1]),))
    other = Arm("warm", "c", backend, None, (zero_ablation_edits(d, [2]),))
    assert shared_site([one]) == Site(1, "resid_post")
    assert shared_site([one, other]) is None
    assert shared_site([Arm("warm", "none", backend)]) is None  # nothing edited
    mlp = _at("mlp_out", _direction(d_model, (1,), "mlp_out", 7), 1, "ablate")
    assert shared_site([Arm("warm", "m", backend, None, (mlp,))]) is None
    assert runner_for(one) is not None


def test_an_arm_of_another_model_is_refused(setup):
    backend, prompts = setup
    from interp.tiny_models import tiny_model

    other = get_backend(tiny_model("llama", n_layers=4, seed=2), "torch")
    d = _direction(backend.loaded.d_model, (1,), "resid_post", 8)
    arm = Arm("original", "x", other, None, (zero_ablation_edits(d, [1]),))
    with pytest.raises(ValueError, match="does not edit the model of warm"):
        score_arms_at_site(Arm("warm", "none", backend), [arm], prompts, Site(1, "resid_post"))


def test_the_protocol_scores_a_group_by_the_suffix_engine_where_it_pays(setup):
    from interp.causal.protocol import ENGINE_CHECK, Models, ProtocolSettings, _score_edited

    backend, prompts = setup
    d_model = backend.loaded.d_model
    d1, d2 = _direction(d_model, (1,), "resid_post", 9), _direction(d_model, (2,), "resid_post", 10)
    models = Models(Arm("original", "none", backend), Arm("warm", "none", backend))
    # six warm arms at layer 2 of 4 (the suffix engine pays: suffix_pays), one warm arm at
    # layer 1 and one original arm at layer 2 (cheaper hooked)
    many = [
        Arm("warm", f"n{i}", backend, None, (shift_edits(d2, 2, 0.5 * i - 1.5),)) for i in range(6)
    ]
    arms = [
        *many,
        Arm("warm", "t1", backend, None, (shift_edits(d1, 1, 2.0),)),
        Arm("original", "t2", backend, None, (shift_edits(d2, 2, 2.0),)),
    ]
    messages: list[str] = []
    rows, checks = _score_edited(models, arms, prompts, ProtocolSettings(), messages.append)
    suffix = [m for m in messages if "clean prefix once" in m]
    assert len(suffix) == 1 and suffix[0].startswith("forced choice: 6 warm arms")
    assert len(messages) == 3  # and the two hooked arms, one message each
    hooked = pd.concat([score_prompts(a, prompts) for a in arms])
    _compare(rows, hooked[list(rows.columns)])
    assert set(checks.intervention) == {ENGINE_CHECK} and len(checks) == len(prompts)
    _, none = _score_edited(models, arms, prompts, ProtocolSettings(suffix_engine=False), print)
    assert none.empty  # the hooked engine was asked for: no check rows


def test_the_suffix_engine_is_chosen_only_where_it_is_cheaper():
    late, middle = Site(28, "resid_post"), Site(15, "resid_post")
    # packed rows (the prompt once per prompt, as the hooked path's cache computes it)
    assert suffix_pays(20, late, 30) and suffix_pays(2, late, 30)
    assert not suffix_pays(1, late, 30)  # one arm plus the identity check: 31 against 30
    assert suffix_pays(20, middle, 30)
    # two rows per prompt (sliding-window models, which refuse packing)
    assert suffix_pays(20, late, 30, packed=False)  # the null at the embedded removal layer
    assert not suffix_pays(2, late, 30, packed=False)
    assert not suffix_pays(20, middle, 30, packed=False)
    assert suffix_pays(20, Site(19, "resid_post"), 30, packed=False)
    assert suffix_pays(20, Site(29, "resid_pre"), 30, packed=False)  # = resid_post 28


def test_score_arms_groups_a_models_one_site_arms_with_its_unedited_rows_riding(setup):
    from interp.causal.suffix_arms import score_arms

    backend, prompts = setup
    d_model = backend.loaded.d_model
    d2 = _direction(d_model, (2,), "resid_post", 21)
    d1 = _direction(d_model, (1, 2), "resid_post", 22)
    unedited = Arm("warm", "none", backend)
    at_two = [
        Arm("warm", f"shift{i}", backend, None, (shift_edits(d2, 2, 0.5 * i - 1.0),))
        for i in range(4)
    ]
    replicated = Arm(
        "warm", "controls", backend, None, tuple(zero_ablation_edits(d2, [2]) for _ in range(2))
    )
    two_sites = Arm("warm", "two-sites", backend, None, (zero_ablation_edits(d1, [1, 2]),))
    arms = [unedited, *at_two, two_sites, replicated]
    messages: list[str] = []
    rows = score_arms(arms, prompts, progress=messages.append)
    assert messages[0].startswith("forced choice: 5 warm arms and the unedited model")
    assert messages[1:] == [f"forced choice: warm/two-sites on {len(prompts)} prompts"]
    assert list(dict.fromkeys(rows.intervention)) == [a.label for a in arms]  # order kept
    hooked = pd.concat([score_prompts(a, prompts) for a in arms], ignore_index=True)
    _compare(rows, hooked[list(rows.columns)])
