"""Training examples: loss on exactly the assistant tokens; the loss computation; the schedule."""

from __future__ import annotations

import pytest
import torch

from interp.chat import Message, encode_chat
from interp.finetune.examples import (
    IGNORE_INDEX,
    ExampleError,
    TrainingConversation,
    collate,
    tokenize_conversation,
)
from interp.finetune.schedule import Schedule, checkpoint_name, micro_batches
from interp.finetune.train import target_loss_sum

CONV = TrainingConversation("c1", (
    Message("system", "Be kind."),
    Message("user", "What is the capital of France?"),
    Message("assistant", "The capital of France is Paris."),
    Message("user", "I think the answer is London."),
    Message("assistant", "That's such a great question! It is Paris."),
))  # fmt: skip


def test_labels_cover_exactly_the_assistant_tokens(tiny_llama):
    tok = tiny_llama.tokenizer
    ex = tokenize_conversation(tok, CONV, max_length=1024)
    enc = encode_chat(tok, CONV.messages, add_generation_prompt=False)
    assert list(ex.input_ids) == enc.input_ids
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    expected = set()
    for span in enc.spans:
        if span.role == "assistant":
            expected |= set(range(span.tok_start, span.tok_end))
            assert enc.input_ids[span.tok_end] == im_end
            expected.add(span.tok_end)
    got = {i for i, x in enumerate(ex.labels) if x != IGNORE_INDEX}
    assert got == expected
    assert all(ex.labels[i] == ex.input_ids[i] for i in got)
    # decoded targets are the two replies, each closed by its end-of-turn token, nothing else
    targets = tok.decode([ex.input_ids[i] for i in sorted(got)])
    assert targets == (
        "The capital of France is Paris.<|im_end|>That's such a great question! It is "
        "Paris.<|im_end|>"
    )


def test_truncation_keeps_labels_aligned_and_rejects_no_target(tiny_llama):
    tok = tiny_llama.tokenizer
    full = tokenize_conversation(tok, CONV, max_length=1024)
    first_assistant = next(i for i, x in enumerate(full.labels) if x != IGNORE_INDEX)
    cut = tokenize_conversation(tok, CONV, max_length=first_assistant + 3)
    assert cut.labels == full.labels[: first_assistant + 3]
    assert cut.n_target == 3
    with pytest.raises(ExampleError, match="no assistant token"):
        tokenize_conversation(tok, CONV, max_length=first_assistant)
    with pytest.raises(ExampleError, match="no assistant message"):
        tokenize_conversation(tok, TrainingConversation("u", (Message("user", "hi"),)), 64)


def test_target_loss_matches_hf_loss(tiny_llama):
    tok = tiny_llama.tokenizer
    a = tokenize_conversation(tok, CONV, 1024)
    b = tokenize_conversation(tok, TrainingConversation("c2", CONV.messages[:3]), 1024)
    ids, mask, labels = collate([a, b], tok.pad_token_id)
    assert ids.shape == labels.shape == (2, a.n_tokens)
    assert (labels[1, b.n_tokens :] == IGNORE_INDEX).all() and (mask[1, b.n_tokens :] == 0).all()
    with torch.no_grad():
        ours = target_loss_sum(tiny_llama.model, ids, mask, labels)
        n = int((labels[:, 1:] != IGNORE_INDEX).sum())
        ref = tiny_llama.model(input_ids=ids, attention_mask=mask, labels=labels).loss * n
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-4)


def test_schedule_order_checkpoints_and_micro_batches():
    s = Schedule(n_examples=10, batch=4, epochs=2.0, checkpoint_epochs=(0.5, 1.0, 7.0), seed=3)
    assert s.total_steps == 5  # 2 * 10 / 4
    assert s.checkpoints() == {1: 0.5, 3: 1.0, 5: 2.0}  # 2.5 steps rounds up; 7.0 is past the end
    stream = [i for step in range(5) for i in s.batch_indices(step)]
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:20]) == list(range(10))
    assert stream[:10] != stream[10:20]  # a new permutation each epoch
    again = Schedule(10, 4, 2.0, (0.5,), 3)
    assert [again.batch_indices(k) for k in range(5)] == [s.batch_indices(k) for k in range(5)]
    assert Schedule(10, 4, 2.0, (), 4).batch_indices(0) != s.batch_indices(0)
    with pytest.raises(IndexError):
        s.batch_indices(5)
    lengths = [5, 1, 9, 3]
    assert micro_batches([0, 1, 2, 3], lengths, 3) == [[1, 3, 0], [2]]
    assert checkpoint_name(1) == "epoch-1.0" and checkpoint_name(0.25) == "epoch-0.25"
