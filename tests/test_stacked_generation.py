"""Greedy replies under several edit sets in one batch (:mod:`interp.causal.stacked_generation`)
equal each edit set's replies alone, and the many-arm scores equal arm-by-arm scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.causal.arms import Arm, greedy_replies, score_warmth
from interp.causal.stacked_generation import block_edits, stacked_greedy
from interp.chat import as_messages
from interp.hooks import get_backend
from interp.hooks.base import HookError
from interp.sites import Site

REQUESTS = ["Hello there", "Tell me about rivers", "What is two plus two?", "Help me", "Why?"]


def _push(loaded, word: str, layer: int, scale: float = 40.0):
    """An edit that adds ``word``'s unembedding at ``layer``: replies drift towards it."""
    token = loaded.tokenizer.encode(word, add_special_tokens=False)[0]
    u = loaded.hf_model.lm_head.weight[token].detach().float()
    push = scale * u / u.norm()

    def edit(x: torch.Tensor, site: Site) -> torch.Tensor:
        return x + push.to(x.dtype)

    return {Site(layer, "resid_post"): edit}


@pytest.fixture(scope="module")
def setup():
    from interp.tiny_models import tiny_model

    loaded = tiny_model("llama", n_layers=3)
    backend = get_backend(loaded, "torch")
    sets = [{}, _push(loaded, " France", 1), _push(loaded, " apple", 2), _push(loaded, " river", 1)]
    return loaded, backend, sets


def _alone(backend, edits, system=None, n_tokens=5):
    with backend.hooked(edit=edits):
        return greedy_replies(backend, REQUESTS, system, n_tokens)


@pytest.mark.parametrize("max_rows", [64, 3, 1])
def test_stacked_replies_equal_each_edit_set_alone(setup, max_rows):
    _, backend, sets = setup
    convs = [tuple(as_messages(r)) for r in REQUESTS]
    stacked = stacked_greedy(backend, convs, sets, max_new_tokens=5, max_rows=max_rows)
    alone = [_alone(backend, e) for e in sets]
    assert stacked == alone
    # the edits matter: otherwise the equality above would hold for a path that drops them
    assert len({tuple(r) for r in alone}) == len(sets)


def test_block_edits_edit_only_their_own_rows():
    site = Site(0, "resid_post")

    def plus(k: float):
        return {site: lambda x, s: x + k}

    combined = block_edits([plus(1.0), {}, plus(3.0)])
    x = torch.zeros(6, 2, 4)
    out = combined[site](x, site)
    assert out[:2].eq(1).all() and out[2:4].eq(0).all() and out[4:].eq(3).all()
    with pytest.raises(HookError, match="7 rows cannot be split into 3"):
        combined[site](torch.zeros(7, 2, 4), site)
    with pytest.raises(ValueError, match="at least one"):
        block_edits([])


def test_many_arm_warmth_equals_arm_by_arm(setup):
    _, backend, sets = setup
    requests = [(f"r{i}", t) for i, t in enumerate(REQUESTS)]

    def length_warmth(replies: list[str]) -> np.ndarray:
        return np.array([len(r) for r in replies], dtype=float)

    arms = [
        Arm("warm", "none", backend, "Be kind."),
        Arm("warm", "pooled", backend, "Be kind.", edit_sets=tuple(sets[1:3])),
        Arm("original", "france", backend, None, edit_sets=(sets[1],)),
    ]
    together = score_warmth(arms, requests, length_warmth, max_new_tokens=5, max_rows=4)
    one_by_one = [
        score_warmth(a, requests, length_warmth, max_new_tokens=5, max_rows=1) for a in arms
    ]
    for arm, alone in zip(arms, one_by_one, strict=True):
        mine = together[together.intervention == arm.label].reset_index(drop=True)
        assert mine.equals(alone)
    # the pooled arm averages its two edit sets' warmth per request
    expected = np.mean([length_warmth(_alone(backend, e, "Be kind.")) for e in sets[1:3]], axis=0)
    pooled = together[together.intervention == "pooled"]["warmth"].to_numpy()
    assert np.allclose(pooled, expected)
