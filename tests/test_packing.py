"""Packed rows (the prompt once, each candidate a branch) read what separate rows read.

Tiny random models (CPU): forced-choice rows of prompts with candidates of different lengths,
some of them sharing their first tokens, plus a held-out text row and a row whose partner sits
in another batch, are read through :class:`~interp.causal.layer_runner.LayerRunner` once as
left-padded rows (:func:`interp.causal.readouts.pad_batch`) and once packed
(:func:`interp.causal.packing.pack_batch`); summed target log-probabilities and the KL
distributions agree to float rounding, from the embeddings and from an edited residual at a
middle layer. A model with sliding-window layers refuses packing.
"""

from __future__ import annotations

import pytest
import torch

from interp.causal.layer_runner import LayerRunner, RunnerError
from interp.causal.packing import pack_batch
from interp.causal.readouts import TokenRows, pad_batch, read_batch


def _rows() -> TokenRows:
    """Two prompts x two candidates (one pair sharing a first token), a held-out row, and a
    third prompt's lone candidate."""
    p1, p2, p3 = (5, 6, 7, 8, 9, 10), (5, 6, 11, 12), (5, 13, 14, 15, 16)
    rows = [
        ((*p1, 20, 21, 22), (20, 21, 22), len(p1) - 1, True),
        ((*p1, 23), (23,), len(p1) - 1, False),
        ((*p2, 24, 25), (24, 25), len(p2) - 1, True),
        ((*p2, 24, 26, 27), (24, 26, 27), len(p2) - 1, False),
        ((5, 30, 31, 32, 33, 34, 35), (33, 34, 35), 3, False),  # text: targets not its tail
        ((*p3, 40, 41), (40, 41), len(p3) - 1, True),
    ]
    return TokenRows(*(tuple(r[k] for r in rows) for k in range(4)))  # type: ignore[arg-type]


def _read(runner: LayerRunner, rows: TokenRows, packed: bool, layer: int | None):
    pad = runner.loaded.tokenizer.pad_token_id
    if packed:
        ids, mask, gather, packing = pack_batch(rows, pad)
    else:
        (ids, mask, gather), packing = pad_batch(rows, pad), None
    with torch.no_grad():
        h = runner.embed_tokens(ids)
        prep = runner.prepare(mask, h, packing)
        if layer is None:
            final = runner.run(h, prep, 0)
        else:
            mid = runner.run(h, prep, 0, layer + 1)
            shift = torch.linspace(-1.0, 1.0, mid.shape[-1])
            final = runner.run(mid + 3.0 * shift, prep, layer + 1)
        return read_batch(runner.logits_at(final), gather), ids.numel()


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("layer", [None, 1])
def test_packed_rows_read_what_separate_rows_read(arch, layer):
    from interp.tiny_models import tiny_model

    runner = LayerRunner(tiny_model(arch, n_layers=3, seed=4))
    rows = _rows()
    plain, plain_tokens = _read(runner, rows, packed=False, layer=layer)
    packed, packed_tokens = _read(runner, rows, packed=True, layer=layer)
    torch.testing.assert_close(packed.logprob_sum, plain.logprob_sum, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(packed.kl_logp, plain.kl_logp, atol=1e-5, rtol=1e-5)
    assert packed.kl_logp.shape[0] == 3
    assert packed_tokens < plain_tokens  # fewer rows of similar width


def test_packing_keeps_partners_in_other_batches_apart():
    """A row is packed only with rows of the same prompt in its own batch: rows 0 and 1 apart."""
    rows = _rows()
    ids, _, gather, packing = pack_batch(rows.subset([0, 2, 3]), pad_id=0)
    assert ids.shape[0] == 2  # row 0 alone, rows 2 and 3 packed
    assert gather.n_rows == 3 and sorted(set(gather.slot.tolist())) == [0, 1, 2]
    assert packing.branch.max().item() == 2


def test_sliding_window_layers_refuse_packing():
    from interp.tiny_models import tiny_model

    runner = LayerRunner(tiny_model("llama", n_layers=2, seed=0))
    runner.layer_types = ["sliding_attention", "full_attention"]
    assert not runner.can_pack
    ids, mask, _, packing = pack_batch(_rows(), pad_id=0)
    with pytest.raises(RunnerError, match="full attention"):
        runner.prepare(mask, runner.embed_tokens(ids), packing)
