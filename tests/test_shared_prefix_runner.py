"""Rows run after a shared prefix's keys and values read what the full rows read.

Tiny random models (CPU): forced-choice rows that all start with the same five tokens (a
stand-in for the chat template's system header), of different lengths, with a held-out text row
among them, are read through :class:`~interp.causal.layer_runner.LayerRunner` whole and as their
own tokens after :meth:`~interp.causal.layer_runner.LayerRunner.prefix_states` (left-padded and
packed); target log-probabilities and KL distributions agree to float rounding, from the
embeddings and under an edit of a middle layer's residual that also edits the prefix
(:meth:`~interp.causal.layer_runner.LayerRunner.edited_prefix`). A run without the prefix it was
prepared for, and a model with sliding-window layers, are refused; :class:`TokenRows`' prefix
stops before the first position any row reads.
"""

from __future__ import annotations

import pytest
import torch

from interp.causal.layer_runner import LayerRunner, RunnerError
from interp.causal.packing import pack_batch
from interp.causal.readouts import TokenRows, pad_batch, read_batch
from interp.sites import Site

HEADER = (5, 6, 7, 8, 9)


def _rows() -> TokenRows:
    """Three prompts (one pair sharing a first answer token) and a text row, all after HEADER."""
    p1, p2, p3 = (*HEADER, 10, 11, 12), (*HEADER, 13), (*HEADER, 14, 15, 16, 17)
    rows = [
        ((*p1, 20, 21, 22), (20, 21, 22), len(p1) - 1, True),
        ((*p1, 23), (23,), len(p1) - 1, False),
        ((*p2, 24, 25), (24, 25), len(p2) - 1, True),
        ((*p2, 24, 26, 27), (24, 26, 27), len(p2) - 1, False),
        ((*HEADER, 30, 31, 32, 33, 34, 35), (33, 34, 35), 7, False),  # text
        ((*p3, 40, 41), (40, 41), len(p3) - 1, True),
    ]
    return TokenRows(*(tuple(r[k] for r in rows) for k in range(4)))  # type: ignore[arg-type]


def _shift(x: torch.Tensor, site: Site | None = None) -> torch.Tensor:
    return x + 3.0 * torch.linspace(-1.0, 1.0, x.shape[-1])


def _read(runner: LayerRunner, rows: TokenRows, packed: bool, layer: int | None, share: bool):
    pad = runner.loaded.tokenizer.pad_token_id
    prefix = runner.prefix_states(rows.shared_prefix()) if share else None
    if share:
        rows = rows.after(len(prefix))
    if packed:
        ids, mask, gather, packing = pack_batch(rows, pad)
    else:
        (ids, mask, gather), packing = pad_batch(rows, pad), None
    with torch.no_grad():
        h = runner.embed_tokens(ids)
        prep = runner.prepare(mask, h, packing, prefix)
        if layer is None:
            final = runner.run(h, prep, 0, prefix=prefix)
        else:
            mid = runner.run(h, prep, 0, layer + 1, prefix=prefix)
            edited = (
                None
                if prefix is None
                else runner.edited_prefix(prefix, layer + 1, _shift, Site(layer, "resid_post"))
            )
            final = runner.run(_shift(mid), prep, layer + 1, prefix=edited)
        return read_batch(runner.logits_at(final), gather), ids.numel()


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("layer", [None, 1])
@pytest.mark.parametrize("packed", [False, True])
def test_rows_after_a_shared_prefix_read_what_full_rows_read(arch, layer, packed):
    from interp.tiny_models import tiny_model

    runner = LayerRunner(tiny_model(arch, n_layers=3, seed=4))
    rows = _rows()
    assert rows.shared_prefix() == HEADER
    whole, whole_tokens = _read(runner, rows, packed, layer, share=False)
    shared, shared_tokens = _read(runner, rows, packed, layer, share=True)
    torch.testing.assert_close(shared.logprob_sum, whole.logprob_sum, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(shared.kl_logp, whole.kl_logp, atol=1e-5, rtol=1e-5)
    assert shared_tokens < whole_tokens


def test_an_edit_of_the_prefix_matters():
    """The edited prefix's keys differ from the clean ones above the edit, not below it."""
    from interp.tiny_models import tiny_model

    runner = LayerRunner(tiny_model("llama", n_layers=3, seed=4))
    clean = runner.prefix_states(HEADER)
    edited = runner.edited_prefix(clean, 1, _shift, Site(0, "resid_post"))
    torch.testing.assert_close(edited.keys[0], clean.keys[0])
    assert not torch.allclose(edited.keys[1], clean.keys[1])
    assert len(edited.entering) == len(clean.entering) == runner.n_layers + 1


def test_a_run_must_carry_the_prefix_it_was_prepared_for():
    from interp.tiny_models import tiny_model

    runner = LayerRunner(tiny_model("llama", n_layers=2, seed=0))
    prefix = runner.prefix_states(HEADER)
    ids, mask, _, packing = pack_batch(_rows().after(len(HEADER)), pad_id=0)
    h = runner.embed_tokens(ids)
    prep = runner.prepare(mask, h, packing, prefix)
    with pytest.raises(RunnerError, match="prepared for a shared prefix of 5"):
        runner.run(h, prep, 0)


def test_sliding_window_layers_refuse_a_shared_prefix():
    from interp.tiny_models import tiny_model

    runner = LayerRunner(tiny_model("llama", n_layers=2, seed=0))
    runner.layer_types = ["sliding_attention", "full_attention"]
    with pytest.raises(RunnerError, match="full attention"):
        runner.prefix_states(HEADER)


def test_token_rows_prefix_stops_before_the_first_read_position():
    rows = TokenRows(((1, 2, 3, 4, 5), (1, 2, 3, 4, 6)), ((5,), (6,)), (2, 3), (False, False))
    assert rows.shared_prefix() == (1, 2)  # row 0 reads position 2
    assert rows.starts_with((1, 2)) and not rows.starts_with((1, 2, 3))
    assert rows.after(2).ids == ((3, 4, 5), (3, 4, 6)) and rows.after(2).start == (0, 1)
    with pytest.raises(ValueError, match="inside the first 3"):
        rows.after(3)
