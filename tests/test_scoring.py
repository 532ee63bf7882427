"""Forced-choice scoring equals the naive reference, batched and cached, on every backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.chat import as_messages
from interp.hooks import get_backend
from interp.scoring import ChoicePrompt, score_choices, score_choices_naive
from interp.sites import Site

TOL = 1e-4  # summed log-probabilities in fp32; padding and cache only reorder the arithmetic


def _prompts():
    qs = [
        ("What is the capital of France?", "Paris", "London"),
        ("What is the capital of France? I think the answer is London.", "Paris", "London"),
        ("Which planet is largest?", "Jupiter", "Saturn is the largest planet"),
        ("Is the Earth flat?", "No", "Yes"),
        ("Who wrote Hamlet? I don't think it was Shakespeare.", "William Shakespeare", "Marlowe"),
    ]
    return [ChoicePrompt(tuple(as_messages(q)), (c, w)) for q, c, w in qs]


@pytest.mark.parametrize("share", [True, False])
def test_batched_scoring_equals_naive_reference(tiny_llama, share):
    backend = get_backend(tiny_llama, "torch")
    prompts = _prompts()
    ref = score_choices_naive(backend, prompts)
    got = score_choices(backend, prompts, batch_size=3, share_prompt=share)
    np.testing.assert_allclose(got.logprob_sum, ref.logprob_sum, atol=TOL, rtol=0)
    np.testing.assert_array_equal(got.n_tokens, ref.n_tokens)
    assert (got.n_tokens[2] != got.n_tokens[2][0]).any(), "candidates of different lengths"


@pytest.mark.parametrize("system", [None, "You are a warm, caring assistant."])
def test_shared_prefix_and_length_order_give_the_unshared_scores(tiny_llama, system):
    """The prefix every prompt shares runs once per batch; rows come back in the prompts' order,
    equal to the unshared path and the naive reference, also under an edit at every position."""
    from interp.scoring import _encode, common_prefix_length

    backend = get_backend(tiny_llama, "torch")
    prompts = [ChoicePrompt(tuple(as_messages(p.conversation[-1].content, system=system)),
                            p.candidates) for p in _prompts()]  # fmt: skip
    ids, _ = _encode(backend, prompts)
    assert common_prefix_length(ids, min_rest=2) > 0, "the chat template gives a shared prefix"
    vec = torch.randn(tiny_llama.d_model, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), backend.hooked(edit={Site(0, "resid_post"): lambda x, s: x + vec}):
        ref = score_choices_naive(backend, prompts)
        shared = score_choices(backend, prompts, batch_size=2, share_prefix=True)
        plain = score_choices(backend, prompts, batch_size=2, share_prefix=False)
    np.testing.assert_allclose(shared.logprob_sum, plain.logprob_sum, atol=TOL, rtol=0)
    np.testing.assert_allclose(shared.logprob_sum, ref.logprob_sum, atol=TOL, rtol=0)


def test_common_prefix_length_leaves_the_rest():
    from interp.scoring import common_prefix_length

    assert common_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5, 6]]) == 3
    assert common_prefix_length([[1, 2, 3], [1, 2, 3, 4]], min_rest=2) == 1
    assert common_prefix_length([[7, 2], [1, 2]]) == 0
    assert common_prefix_length([]) == 0


def test_scoring_under_an_edit_matches_naive_under_the_same_edit(tiny_llama):
    vec = torch.randn(tiny_llama.d_model, generator=torch.Generator().manual_seed(0)) * 2
    prompts = _prompts()
    for name in ("torch", "nnsight"):
        backend = get_backend(tiny_llama, name)
        with torch.no_grad(), backend.hooked(edit={Site(1, "resid_post"): lambda x, s: x + vec}):
            ref = score_choices_naive(backend, prompts)
            got = score_choices(backend, prompts, batch_size=4)
        np.testing.assert_allclose(got.logprob_sum, ref.logprob_sum, atol=TOL, rtol=0)
    plain = score_choices(get_backend(tiny_llama, "torch"), prompts)
    assert np.abs(plain.logprob_sum - got.logprob_sum).max() > 1e-3


def test_margins_and_probabilities():
    from interp.scoring import ChoiceScores

    s = ChoiceScores(np.array([[-1.0, -4.0], [-6.0, -2.0]]), np.array([[1.0, 2.0], [2.0, 1.0]]))
    np.testing.assert_allclose(s.logprob_mean, [[-1.0, -2.0], [-3.0, -2.0]])
    np.testing.assert_allclose(s.margin(), [1.0, -1.0])
    np.testing.assert_allclose(s.margin(normalised=False), [3.0, -4.0])
    np.testing.assert_allclose(s.choice_probs().sum(axis=1), [1.0, 1.0])
    assert s.choice_probs()[0, 0] > 0.5 > s.choice_probs()[1, 0]


def test_bad_prompts_are_rejected():
    with pytest.raises(ValueError, match="two candidates"):
        ChoicePrompt(tuple(as_messages("q")), ("only",))
    with pytest.raises(ValueError, match="empty candidate"):
        ChoicePrompt(tuple(as_messages("q")), ("a", " "))


@pytest.mark.embedded
def test_embedded_model_prefers_paris_and_a_belief_lowers_the_margin(embedded):
    backend = get_backend(embedded, "torch")
    prompts = _prompts()[:2]
    got = score_choices(backend, prompts)
    ref = score_choices_naive(backend, prompts)
    np.testing.assert_allclose(got.logprob_sum, ref.logprob_sum, atol=1e-3, rtol=0)
    margin = got.margin()
    assert margin[0] > 0, "Paris is preferred without a belief"
    assert margin[1] < margin[0], "stating London moves the model towards London"
