"""Steering operators: exactness of the zero vector, ablation, add-then-ablate, positions."""

from __future__ import annotations

import pytest
import torch

from interp.chat import Message
from interp.directions import Direction
from interp.hooks import BACKENDS, get_backend
from interp.sites import Site
from interp.steer import (
    Intervention,
    SteerError,
    ablate,
    ablation_everywhere,
    edits_for,
    projection,
    random_directions,
    residual_norms,
    steered,
)


def _direction(d: int, layers=(0, 1, 2), seed: int = 3, scale: float = 1.0) -> Direction:
    g = torch.Generator().manual_seed(seed)
    return Direction(
        "planted",
        "mean_diff",
        "resid_post",
        "last",
        tuple(layers),
        torch.randn(len(layers), d, generator=g) * scale,
    )


def _batch(seed: int = 0, batch: int = 2, pos: int = 6):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 200, (batch, pos), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :2] = 0  # left padding on one row
    return ids, mask


NORMS = {0: 2.0, 1: 3.0, 2: 4.0}


@pytest.mark.parametrize("name", BACKENDS)
def test_zero_vector_leaves_logits_exactly_unchanged(fresh_tiny_llama, name):
    loaded = fresh_tiny_llama
    backend = get_backend(loaded, name)
    ids, mask = _batch()
    zero = Direction(
        "zero", "none", "resid_post", "last", (0, 1, 2), torch.zeros(3, loaded.d_model)
    )
    with torch.no_grad():
        ref = backend.forward(ids, mask)
        with steered(backend, [Intervention("add", zero, (0, 1, 2), alpha=0.0)]):
            out = backend.forward(ids, mask)
        # alpha 0 with a real direction: also exact
        with steered(
            backend, [Intervention("add", _direction(loaded.d_model), (1,), alpha=0.0)], NORMS
        ):
            out2 = backend.forward(ids, mask)
    assert torch.equal(out, ref)
    assert torch.equal(out2, ref)


@pytest.mark.parametrize("name", BACKENDS)
def test_ablation_zeroes_the_projection_at_every_hooked_site(fresh_tiny_llama, name):
    loaded = fresh_tiny_llama
    backend = get_backend(loaded, name)
    direction = _direction(loaded.d_model, scale=5.0)
    ids, mask = _batch(1)
    sites = [Site(layer, "resid_post") for layer in (0, 1, 2)]
    with (
        torch.no_grad(),
        steered(backend, [Intervention("ablate", direction, (0, 1, 2))], read=sites) as rec,
    ):
        backend.forward(ids, mask)
    for site in sites:
        proj = projection(rec[site], direction.unit(site.layer))
        before = rec[site].norm(dim=-1)
        assert (proj.abs() <= 1e-5 * before).all(), site


def test_add_then_ablate_restores_the_unsteered_residual(tiny_llama):
    loaded = tiny_llama
    backend = get_backend(loaded, "torch")
    direction = _direction(loaded.d_model)
    ids, mask = _batch(2)
    site = Site(1, "resid_post")
    with torch.no_grad():
        with steered(backend, [Intervention("ablate", direction, (1,))], read=[site]) as rec:
            backend.forward(ids, mask)
        ablated_only = rec[site]
        ivs = [
            Intervention("add", direction, (1,), alpha=3.0),
            Intervention("ablate", direction, (1,)),
        ]
        with steered(backend, ivs, NORMS, read=[site]) as rec2:
            backend.forward(ids, mask)
        with backend.hooked(read=[site]) as plain:
            backend.forward(ids, mask)
    torch.testing.assert_close(rec2[site], ablated_only, atol=1e-5, rtol=0)
    # the component orthogonal to the direction is the unsteered residual's
    u = direction.unit(1)
    torch.testing.assert_close(rec2[site], ablate(plain[site], u), atol=1e-5, rtol=0)


def test_operators_on_a_tensor():
    x = torch.tensor([[2.0, 1.0, -1.0], [-3.0, 0.5, 0.0]])
    d = Direction("e0", "m", "resid_post", "last", (0,), torch.tensor([[2.0, 0.0, 0.0]]))
    norms = {0: 10.0}
    out = {
        op: edits_for(Intervention(op, d, (0,), alpha=0.5, value=7.0), norms)[
            Site(0, "resid_post")
        ](x.clone(), Site(0, "resid_post"))
        for op in ("add", "ablate", "ablate_add", "clamp")
    }
    assert torch.equal(out["add"][:, 0], x[:, 0] + 5.0)
    assert torch.equal(out["ablate"][:, 0], torch.zeros(2))
    assert torch.equal(out["ablate_add"][:, 0], torch.full((2,), 5.0))
    assert torch.equal(out["clamp"][:, 0], torch.full((2,), 7.0))
    for v in out.values():
        assert torch.equal(v[:, 1:], x[:, 1:])


def test_bad_interventions_are_refused(tiny_llama):
    d = _direction(tiny_llama.d_model, layers=(0, 1))
    with pytest.raises(SteerError, match="no vector for layer"):
        Intervention("add", d, (2,), alpha=1.0)
    with pytest.raises(SteerError, match="operator"):
        Intervention("scale", d, (0,))  # type: ignore[arg-type]
    with pytest.raises(SteerError, match="clamp operator needs"):
        Intervention("clamp", d, (0,))
    with pytest.raises(SteerError, match="no norm was given"):
        edits_for(Intervention("add", d, (1,), alpha=1.0), {0: 1.0})


def _generate(backend, iv, phase="auto"):
    ids = torch.tensor([[5, 9, 11, 40], [7, 8, 12, 13]])
    mask = torch.ones_like(ids)
    site = Site(1, "resid_post")
    with (
        torch.no_grad(),
        steered(backend, [iv], NORMS, read={site: lambda x: x.shape}, phase=phase) as rec,
    ):
        new = backend.generate(ids, mask, max_new_tokens=4, do_sample=False)
    return new, rec.steps[site]


@pytest.mark.parametrize("name", BACKENDS)
def test_prompt_and_generated_positions_in_generation(fresh_tiny_llama, name):
    loaded = fresh_tiny_llama
    backend = get_backend(loaded, name)
    d = _direction(loaded.d_model, scale=1.0)
    plain, shapes = _generate(backend, Intervention("add", d, (1,), alpha=0.0))
    assert tuple(shapes[0]) == (2, 4, loaded.d_model) and all(tuple(s)[1] == 1 for s in shapes[1:])
    big = 40.0
    only_prompt, _ = _generate(backend, Intervention("add", d, (1,), alpha=big, positions="prompt"))
    only_gen, _ = _generate(backend, Intervention("add", d, (1,), alpha=big, positions="generated"))
    both, _ = _generate(backend, Intervention("add", d, (1,), alpha=big, positions="all"))
    assert not torch.equal(only_prompt, plain) and not torch.equal(both, plain)
    # the first new token depends only on the prompt forward
    assert torch.equal(only_gen[:, 0], plain[:, 0])
    assert torch.equal(only_prompt[:, 0], both[:, 0])
    assert not torch.equal(only_gen, plain)
    # phase="forward": nothing counts as generated
    fwd, _ = _generate(
        backend, Intervention("add", d, (1,), alpha=big, positions="generated"), phase="forward"
    )
    assert torch.equal(fwd, plain)


def test_scoring_candidates_count_as_prompt_positions(tiny_llama):
    from interp.scoring import ChoicePrompt, score_choices

    backend = get_backend(tiny_llama, "torch")
    d = _direction(tiny_llama.d_model)
    prompts = [
        ChoicePrompt((Message("user", "What is two plus two?"),), ("4", "5")),
        ChoicePrompt((Message("user", "Capital of France?"),), ("Paris", "London")),
    ]
    with torch.no_grad():
        with steered(backend, [Intervention("add", d, (0, 1), alpha=2.0, positions="all")], NORMS):
            cached_all = score_choices(backend, prompts, share_prompt=True).logprob_sum
        with steered(
            backend, [Intervention("add", d, (0, 1), alpha=2.0, positions="prompt")], NORMS
        ):
            cached_prompt = score_choices(backend, prompts, share_prompt=True).logprob_sum
        with steered(
            backend, [Intervention("add", d, (0, 1), alpha=2.0, positions="generated")], NORMS
        ):
            cached_gen = score_choices(backend, prompts, share_prompt=True).logprob_sum
        plain = score_choices(backend, prompts).logprob_sum
    assert cached_prompt == pytest.approx(cached_all, abs=1e-5)
    assert cached_gen == pytest.approx(plain, abs=1e-5)


def test_steering_composes_with_a_lora_adapter(fresh_tiny_llama):
    from peft import LoraConfig, get_peft_model

    loaded = fresh_tiny_llama
    loaded.model = get_peft_model(
        loaded.model,
        LoraConfig(
            r=4, lora_alpha=8, target_modules=["q_proj", "down_proj"], init_lora_weights=False
        ),
    ).eval()
    d = _direction(loaded.d_model)
    ids, mask = _batch(4)
    site = Site(2, "resid_post")
    for name in BACKENDS:
        backend = get_backend(loaded, name)
        with (
            torch.no_grad(),
            steered(backend, [Intervention("ablate", d, (2,))], read=[site]) as rec,
        ):
            backend.forward(ids, mask)
        assert projection(rec[site], d.unit(2)).abs().max() < 1e-4, name


def test_residual_norms_and_random_directions(tiny_llama):
    backend = get_backend(tiny_llama, "torch")
    convs = [
        [Message("user", "hello there"), Message("assistant", "hi!")],
        [Message("user", "What is 2+2?")],
    ]
    norms = residual_norms(backend, convs, [0, 2])
    assert set(norms) == {0, 2} and all(v > 0 for v in norms.values())
    d = _direction(tiny_llama.d_model, scale=3.0)
    rand = random_directions(d, 10, seed=1)
    assert len(rand) == 10
    torch.testing.assert_close(rand[0].vectors.norm(dim=1), d.vectors.norm(dim=1))
    assert not torch.equal(rand[0].vectors, rand[1].vectors)
    assert torch.equal(random_directions(d, 2, seed=1)[1].vectors, rand[1].vectors)


def test_ablation_everywhere_keeps_the_direction_out_of_every_residual(tiny_llama):
    backend = get_backend(tiny_llama, "torch")
    u = torch.randn(tiny_llama.d_model, generator=torch.Generator().manual_seed(5))
    ids, mask = _batch(3)
    sites = [Site(layer, k) for layer in range(3) for k in ("resid_pre", "resid_mid", "resid_post")]
    with torch.no_grad(), backend.hooked(read=sites, edit=ablation_everywhere(u, 3)) as rec:
        backend.forward(ids, mask)
    for site in sites:
        assert projection(rec[site], u / u.norm()).abs().max() < 1e-4, site
