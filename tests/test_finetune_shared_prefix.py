"""Training runs the tokens every example of a micro-batch shares (the chat template's system
header) once: the loss and the LoRA gradient are those of the rows' own copies."""

from __future__ import annotations

import pytest
import torch

from interp.finetune.examples import IGNORE_INDEX, TrainingExample, collate
from interp.finetune.train import TrainConfig, lora_model, shared_prefix, target_loss_sum

HEADER = [1, 5, 9, 13, 17, 21]


def _examples(lengths: tuple[int, ...], first_label: int = len(HEADER) + 2):
    g = torch.Generator().manual_seed(0)
    out = []
    for n in lengths:
        ids = HEADER + torch.randint(30, 200, (n,), generator=g).tolist()
        labels = [IGNORE_INDEX] * first_label + ids[first_label:]
        out.append(TrainingExample(f"e{n}", tuple(ids), tuple(labels)))
    return out


def test_the_shared_header_gives_the_loss_and_gradient_of_the_rows_own_copies():
    from interp.tiny_models import tiny_model

    model = lora_model(tiny_model("llama", n_layers=3, seed=0), TrainConfig(lora_dropout=0.0))
    with torch.no_grad():  # LoRA B starts at zero: give the adapter an effect to differentiate
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05, generator=torch.Generator().manual_seed(1))
    examples = _examples((5, 9, 7))
    assert shared_prefix(examples) == len(HEADER)
    ids, mask, labels = collate(examples, 0)

    def loss_and_grads(shared: int):
        model.zero_grad()
        loss = target_loss_sum(model, ids, mask, labels, shared)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        return float(loss), grads

    own, own_grads = loss_and_grads(0)
    once, once_grads = loss_and_grads(len(HEADER))
    assert once == pytest.approx(own, rel=1e-6)
    for name, grad in own_grads.items():
        torch.testing.assert_close(once_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)
    assert any(float(g.abs().max()) > 0 for g in own_grads.values())


def test_the_shared_length_stops_before_labels_and_leaves_each_row_tokens():
    assert shared_prefix(_examples((5, 9))) == len(HEADER)
    # a label at position 4 is predicted from position 3: at most 3 tokens are shared
    assert shared_prefix(_examples((5, 9), first_label=4)) == 3
    # every row keeps at least two tokens of its own
    short = [TrainingExample("a", (1, 5, 9), (IGNORE_INDEX,) * 3)]
    assert shared_prefix(short) == 1
    different = [*_examples((5,)), TrainingExample("b", (2, *HEADER[1:], 40), (IGNORE_INDEX,) * 7)]
    assert shared_prefix(different) == 0 and shared_prefix([]) == 0
    ids, mask, labels = collate(_examples((5, 9), first_label=4), 0)
    with pytest.raises(ValueError, match="a label lies within the 6 shared tokens"):
        target_loss_sum(None, ids, mask, labels, len(HEADER))
