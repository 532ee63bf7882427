"""Hook backends: site conventions pinned against HF, parity between backends, clean-up."""

from __future__ import annotations

import pytest
import torch

from interp.hooks import BACKENDS, HookError, get_backend
from interp.hooks.native import decoder_layers
from interp.sites import SITE_KINDS, Site, sites

ATOL = 1e-5  # fp32 on CPU; the backends run the same kernels, differences are reordering only


def _batch(loaded, seed=0, batch=2, pos=7):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, len(loaded.tokenizer), (batch, pos), generator=g)
    return ids, torch.ones_like(ids)


def _hf(loaded, ids, mask):
    with torch.no_grad():
        return loaded.hf_model(input_ids=ids, attention_mask=mask, output_hidden_states=True)


def test_layer_convention_resid_post_is_hidden_states_plus_one(fresh_tiny_llama):
    loaded = fresh_tiny_llama
    ids, mask = _batch(loaded)
    ref = _hf(loaded, ids, mask)
    backend = get_backend(loaded, "torch")
    n = loaded.n_layers
    want = sites(["resid_pre", "resid_post"], range(n))
    with torch.no_grad(), backend.hooked(read=want) as rec:
        backend.forward(ids, mask)
    for layer in range(n):
        torch.testing.assert_close(rec[Site(layer, "resid_pre")], ref.hidden_states[layer])
    for layer in range(n - 1):
        torch.testing.assert_close(rec[Site(layer, "resid_post")], ref.hidden_states[layer + 1])
    # the last entry of HF's hidden_states has the final norm applied; resid_post does not
    last = rec[Site(n - 1, "resid_post")]
    assert (last - ref.hidden_states[-1]).abs().max() > 1e-3
    norm = loaded.hf_model.model.norm
    torch.testing.assert_close(norm(last), ref.hidden_states[-1])


def test_all_backends_agree_on_logits_and_every_site(fresh_tiny_llama):
    loaded = fresh_tiny_llama
    ids, mask = _batch(loaded, seed=1)
    mask[0, :2] = 0  # left padding on one row
    ref = _hf(loaded, ids, mask)
    want = sites(SITE_KINDS, range(loaded.n_layers))
    results = {}
    for name in ("torch", "nnsight", "transformerlens"):
        backend = get_backend(loaded, name)
        with torch.no_grad(), backend.hooked(read=want) as rec:
            logits = backend.forward(ids, mask)
        results[name] = (logits, rec)
    real = mask.bool()  # pad positions hold no meaning (and depend on the attention kernel)
    for name, (logits, rec) in results.items():
        torch.testing.assert_close(
            logits[real], results["torch"][0][real], atol=ATOL, rtol=0, msg=name
        )
        for s in want:
            torch.testing.assert_close(
                rec[s][real], results["torch"][1][s][real], atol=ATOL, rtol=0, msg=f"{name} {s}"
            )
    # mid and post are sums of their parts
    rec = results["torch"][1]
    for layer in range(loaded.n_layers):
        torch.testing.assert_close(
            rec[Site(layer, "resid_mid")],
            rec[Site(layer, "resid_pre")] + rec[Site(layer, "attn_out")],
        )
        torch.testing.assert_close(
            rec[Site(layer, "resid_post")],
            rec[Site(layer, "resid_mid")] + rec[Site(layer, "mlp_out")],
        )
    # nnsight resid_post at L equals HF hidden_states[L+1] and the TL resid_post at L
    nn_rec, tl_rec = results["nnsight"][1], results["transformerlens"][1]
    torch.testing.assert_close(
        nn_rec[Site(1, "resid_post")][real], ref.hidden_states[2][real], atol=ATOL, rtol=0
    )
    torch.testing.assert_close(
        nn_rec[Site(1, "resid_post")][real], tl_rec[Site(1, "resid_post")][real], atol=ATOL, rtol=0
    )


def test_transformerlens_logits_equal_hf(fresh_tiny_llama):
    loaded = fresh_tiny_llama
    ids, mask = _batch(loaded, seed=2)
    ref = _hf(loaded, ids, mask).logits
    backend = get_backend(loaded, "transformerlens")
    with torch.no_grad():
        logits = backend.forward(ids, mask)
    torch.testing.assert_close(logits, ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", SITE_KINDS)
def test_edits_agree_across_backends(fresh_tiny_llama, kind):
    loaded = fresh_tiny_llama
    ids, mask = _batch(loaded, seed=3)
    vec = torch.randn(loaded.d_model, generator=torch.Generator().manual_seed(4))
    site = Site(1, kind)

    def add(x, _site):
        return x + vec

    out = {}
    for name in BACKENDS:
        backend = get_backend(loaded, name)
        with torch.no_grad(), backend.hooked(read=[Site(2, "resid_pre")], edit={site: add}) as rec:
            out[name] = (backend.forward(ids, mask), rec[Site(2, "resid_pre")])
    base = _hf(loaded, ids, mask).logits
    assert (out["torch"][0] - base).abs().max() > 1e-3, "the edit must change the output"
    for name in BACKENDS:
        torch.testing.assert_close(out[name][0], out["torch"][0], atol=ATOL, rtol=0, msg=name)
        torch.testing.assert_close(out[name][1], out["torch"][1], atol=ATOL, rtol=0, msg=name)


def test_resid_mid_edit_changes_the_residual_like_an_attn_out_edit(tiny_llama):
    ids, mask = _batch(tiny_llama, seed=5)
    vec = torch.randn(tiny_llama.d_model, generator=torch.Generator().manual_seed(6))
    backend = get_backend(tiny_llama, "torch")
    logits = {}
    for kind in ("resid_mid", "attn_out"):
        with torch.no_grad(), backend.hooked(edit={Site(0, kind): lambda x, s: x + vec}):
            logits[kind] = backend.forward(ids, mask)
    torch.testing.assert_close(logits["resid_mid"], logits["attn_out"], atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", BACKENDS)
def test_hooks_are_removed_on_exit_and_on_exceptions(fresh_tiny_llama, name):
    loaded = fresh_tiny_llama
    ids, mask = _batch(loaded, seed=7)
    backend = get_backend(loaded, name)

    def hook_snapshot():
        return {
            (id(m), kind, key)
            for m in loaded.model.modules()
            for kind, table in (("fwd", m._forward_hooks), ("pre", m._forward_pre_hooks))
            for key in table
        }

    with torch.no_grad():
        before = backend.forward(ids, mask)
    hooks_before = hook_snapshot()  # after one forward: the bridge wires its own hooks lazily
    boom = {Site(0, "resid_post"): lambda x, s: x * 0}
    with pytest.raises(RuntimeError, match="boom"), torch.no_grad(), backend.hooked(edit=boom):
        raise RuntimeError("boom")
    with torch.no_grad(), backend.hooked(edit=boom):
        backend.forward(ids, mask)
    with torch.no_grad():
        after = backend.forward(ids, mask)
    torch.testing.assert_close(after, before)
    assert hook_snapshot() == hooks_before
    if name == "torch":
        for layer in decoder_layers(loaded.hf_model):
            for module in layer.modules():
                assert not module._forward_hooks and not module._forward_pre_hooks
    if name == "transformerlens":
        assert all(not hp.has_hooks() for hp in backend.bridge.hook_dict.values())


def test_hooked_contexts_do_not_nest_and_reject_missing_layers(tiny_llama):
    backend = get_backend(tiny_llama, "torch")
    with (
        pytest.raises(ValueError, match="no such layer"),
        backend.hooked(read=[Site(9, "resid_post")]),
    ):
        pass
    with backend.hooked(), pytest.raises(HookError, match="nest"), backend.hooked():
        pass


def test_batched_equals_unbatched_with_left_and_right_padding(tiny_llama):
    backend = get_backend(tiny_llama, "torch")
    short = torch.tensor([[5, 9, 11]])
    long = torch.tensor([[7, 8, 12, 13, 14, 15]])
    pad = tiny_llama.tokenizer.pad_token_id
    site = Site(2, "resid_post")
    with torch.no_grad(), backend.hooked(read=[site]) as rec:
        backend.forward(short, torch.ones_like(short))
        solo = rec[site][0]
        for side in ("left", "right"):
            fill = torch.full((1, 3), pad)
            row = torch.cat([fill, short], 1) if side == "left" else torch.cat([short, fill], 1)
            m = (
                torch.cat([torch.zeros(1, 3), torch.ones(1, 3)], 1)
                if side == "left"
                else torch.cat([torch.ones(1, 3), torch.zeros(1, 3)], 1)
            )
            ids = torch.cat([row, long])
            mask = torch.cat([m.long(), torch.ones_like(long)])
            backend.forward(ids, mask)
            got = rec[site][0][mask[0].bool()]
            torch.testing.assert_close(got, solo, atol=ATOL, rtol=0, msg=side)


def test_generation_under_an_edit_agrees_between_native_and_nnsight(fresh_tiny_llama):
    loaded = fresh_tiny_llama
    ids = torch.tensor([[5, 9, 11, 40], [7, 8, 12, 13]])
    mask = torch.ones_like(ids)
    vec = torch.randn(loaded.d_model, generator=torch.Generator().manual_seed(8)) * 3
    edit = {Site(1, "resid_post"): lambda x, s: x + vec}
    outs = {}
    for name in ("torch", "nnsight", "transformerlens"):
        backend = get_backend(loaded, name)
        with torch.no_grad(), backend.hooked(edit=edit):
            outs[name] = backend.generate(ids, mask, max_new_tokens=5, do_sample=False)
    with torch.no_grad():
        plain = get_backend(loaded, "torch").generate(ids, mask, max_new_tokens=5, do_sample=False)
    assert outs["torch"].shape == (2, 5)
    assert not torch.equal(outs["torch"], plain), "the edit should change greedy tokens"
    assert torch.equal(outs["nnsight"], outs["torch"])
    assert torch.equal(outs["transformerlens"], outs["torch"])


def test_site_parsing_and_errors():
    assert Site.parse("blocks.3.hook_resid_post") == Site(3, "resid_post")
    assert Site.parse("mlp_out.4") == Site(4, "mlp_out")
    assert Site(3, "resid_mid").name == "blocks.3.hook_resid_mid"
    with pytest.raises(ValueError, match="cannot parse"):
        Site.parse("layer three")
    with pytest.raises(ValueError, match="site kind"):
        Site(1, "resid")  # type: ignore[arg-type]


def test_backends_compose_with_a_lora_adapter(fresh_tiny_llama):
    from peft import LoraConfig, get_peft_model

    loaded = fresh_tiny_llama
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False
    )
    loaded.model = get_peft_model(loaded.model, config).eval()
    ids, mask = _batch(loaded, seed=9)
    with torch.no_grad():
        ref = loaded.model(input_ids=ids, attention_mask=mask).logits
    assert type(loaded.hf_model).__name__ == "LlamaForCausalLM"
    vec = torch.ones(loaded.d_model)
    out = {}
    for name in BACKENDS:
        backend = get_backend(loaded, name)
        with torch.no_grad():
            torch.testing.assert_close(backend.forward(ids, mask), ref, atol=ATOL, rtol=0, msg=name)
            with backend.hooked(
                read=[Site(1, "resid_post")], edit={Site(0, "mlp_out"): lambda x, s: x + vec}
            ) as rec:
                out[name] = (backend.forward(ids, mask), rec[Site(1, "resid_post")])
    for name in BACKENDS:
        torch.testing.assert_close(out[name][0], out["torch"][0], atol=ATOL, rtol=0, msg=name)
        torch.testing.assert_close(out[name][1], out["torch"][1], atol=ATOL, rtol=0, msg=name)


@pytest.mark.parametrize("name", ["torch", "nnsight"])
def test_a_forward_for_reads_reads_and_edits_like_forward(tiny_llama, name):
    """``forward_for_reads`` records the same activations as ``forward`` (under an edit too);
    the native backend unembeds one position per row, not every one."""
    backend = get_backend(tiny_llama, name)
    ids, mask = _batch(tiny_llama, seed=4, pos=9)
    mask[1, :3] = 0
    want = sites(["resid_post", "attn_out"], range(tiny_llama.n_layers))
    edit = {Site(0, "resid_post"): lambda x, s: x * 1.5}
    with torch.no_grad(), backend.hooked(read=want, edit=edit) as full:
        backend.forward(ids, mask)
    head = tiny_llama.hf_model.lm_head
    widths = []
    handle = head.register_forward_hook(lambda m, args, out: widths.append(args[0].shape[1]))
    try:
        with torch.no_grad(), backend.hooked(read=want, edit=edit) as reads:
            assert backend.forward_for_reads(ids, mask) is None
    finally:
        handle.remove()
    real = mask.bool()
    for s in want:
        torch.testing.assert_close(reads[s][real], full[s][real], atol=ATOL, rtol=0, msg=str(s))
    if name == "torch":
        assert widths == [1]
