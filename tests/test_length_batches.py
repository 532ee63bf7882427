"""Batches by length: every index once, short rows with short rows, and what padding costs."""

from __future__ import annotations

import pytest

from interp.length_batches import length_batches, padded_cost


def test_every_index_once_in_batches_of_similar_length():
    lengths = [40, 120, 41, 118, 39, 121, 80]
    batches = length_batches(lengths, 2)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len(b) <= 2 for b in batches)
    assert [[lengths[i] for i in b] for b in batches] == [[39, 40], [41, 80], [118, 120], [121]]
    # in the given order each batch pads a short row to a long one
    given = [list(range(i, min(i + 2, len(lengths)))) for i in range(0, len(lengths), 2)]
    assert padded_cost(lengths, batches) < padded_cost(lengths, given)
    assert padded_cost(lengths, [[i] for i in range(len(lengths))]) == sum(lengths)


def test_ties_keep_the_given_order_and_a_bad_batch_size_is_refused():
    assert length_batches([5, 5, 5], 2) == [[0, 1], [2]]
    assert length_batches([], 4) == []
    with pytest.raises(ValueError, match="batch_size must be positive"):
        length_batches([1], 0)


def test_a_group_stays_in_one_batch_and_groups_go_by_their_longest_row():
    # a prompt's two candidate rows (keys "a".."c") and two held-out texts of their own
    lengths = [50, 52, 90, 91, 30, 31, 100, 20]
    keys = ["a", "a", "b", "b", "c", "c", "t1", "t2"]
    batches = length_batches(lengths, 4, groups=keys)
    assert sorted(i for b in batches for i in b) == list(range(8))
    for key in set(keys):
        holding = [b for b in batches if any(keys[i] == key for i in b)]
        assert len(holding) == 1
    assert batches == [[7, 4, 5], [0, 1, 2, 3], [6]]
    assert length_batches([5, 5, 5], 2, groups=["x", "x", "x"]) == [[0, 1, 2]]
    with pytest.raises(ValueError, match="group keys"):
        length_batches([1, 2], 2, groups=["x"])
