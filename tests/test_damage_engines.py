"""Damage (KL over a continuation, held-out loss increase) is the same by both engines.

Tiny random Llama (CPU): edit sets that shift, zero-ablate or steer a direction at one
``resid_pre`` or ``resid_post`` site, with replicates, an unedited label, and labels at two
different sites, scored by :func:`interp.causal.damage.damage_rows` through the clean-prefix
(suffix) engine and through the hooked forward; the values agree to float rounding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from interp.causal.arms import EditSet, intervention_edits
from interp.causal.damage import (
    continuation_units,
    damage_rows,
    damage_rows_at_site,
    text_units,
)
from interp.causal.layer_runner import LayerRunner
from interp.causal.removal import shift_edits, zero_ablation_edits
from interp.chat import Message
from interp.directions import Direction
from interp.hooks import get_backend
from interp.sites import Site
from interp.steer import Intervention


@pytest.fixture(scope="module")
def setup():
    from interp.tiny_models import tiny_model

    backend = get_backend(tiny_model("llama", n_layers=4, seed=3), "torch")
    convs = [
        (f"c{i}", [Message("user", f"What colour is thing number {i}? Answer briefly.")])
        for i in range(5)
    ]
    cont = continuation_units(backend, convs, max_new_tokens=4, batch_size=3)
    held = text_units(
        backend.loaded.tokenizer,
        [
            ("h1", "Tell me about rivers.", "Rivers carry water to the sea."),
            ("h2", "What is a piano?", "A piano is a keyboard instrument with strings."),
            ("h3", "Name a bird.", "A robin."),
        ],
    )
    g = torch.Generator().manual_seed(0)
    d = Direction("d", "test", "resid_post", "all", (1, 2), torch.randn(2, 64, generator=g))
    return backend, cont, held, d


def _steer(d: Direction, layer: int, kind: str, alpha: float) -> EditSet:
    iv = Intervention("add", d, (layer,), alpha=alpha, site_kind=kind)  # type: ignore[arg-type]
    return intervention_edits([iv], norms={layer: 1.0})


def _compare(a: pd.DataFrame, b: pd.DataFrame) -> None:
    key = ["label", "replicate", "measure", "unit_id"]
    both = a.merge(b, on=key, suffixes=("_a", "_b"))
    assert len(both) == len(a) == len(b)
    np.testing.assert_allclose(both["value_a"], both["value_b"], atol=1e-5, rtol=1e-4)


def test_suffix_damage_equals_the_hooked_forward(setup):
    backend, cont, held, d = setup
    assert backend.loaded.d_model == 64
    sets = {
        "none": [{}],
        "shift@1": [shift_edits(d, 1, 3.0)],
        "zero@1": [zero_ablation_edits(d, [1])],
        "pair@1": [shift_edits(d, 1, 2.0), shift_edits(d, 1, -2.0)],  # two replicates
        "pre@2": [_steer(d, 2, "resid_pre", 4.0)],  # another site: its own group
    }
    suffix = damage_rows(backend, sets, cont, held, batch_size=2)
    hooked = damage_rows(backend, sets, cont, held, batch_size=2, suffix=False)
    _compare(suffix, hooked)
    values = suffix.groupby("label")["value"].apply(lambda v: float(np.abs(v).max()))
    assert values["none"] == 0.0 and values["shift@1"] > 1e-4 and values["pre@2"] > 1e-4
    assert set(suffix["measure"]) == {"kl_continuation", "heldout_loss_increase"}


def test_the_site_engine_refuses_edits_at_other_sites(setup):
    backend, cont, held, d = setup
    runner = LayerRunner(backend.loaded)
    with pytest.raises(ValueError, match="edits sites other than"):
        damage_rows_at_site(
            runner, {"x": [shift_edits(d, 2, 1.0)]}, Site(1, "resid_post"), cont, held
        )


def test_the_shared_prefix_measures_what_whole_units_measure(setup):
    """Both measures' units start with the chat template's opening; run once, it changes
    nothing (edits at a middle layer's output and at a block's input)."""
    from interp.causal.damage import _shared_length

    backend, cont, held, d = setup
    assert _shared_length(cont) > 0 and _shared_length(held) > 0
    runner = LayerRunner(backend.loaded)
    for site, sets in (
        (Site(1, "resid_post"), {"none": [{}], "shift": [shift_edits(d, 1, 3.0)]}),
        (Site(2, "resid_pre"), {"steer": [_steer(d, 2, "resid_pre", 4.0)]}),
    ):
        shared = damage_rows_at_site(runner, sets, site, cont, held, batch_size=2)
        whole = damage_rows_at_site(
            runner, sets, site, cont, held, batch_size=2, share_prefix=False
        )
        _compare(shared, whole)
