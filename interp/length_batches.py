"""Batches of rows of similar length, so that padding costs little.

A padded batch computes every row at the longest row's length. The verdict's evaluation prompts
come item by item (neutral, then sad, each without and with a belief), so a batch taken in that
order mixes 40-token and 120-token rows: on the default study's 608 prompts, batches of 16 in
prompt order compute 1.35 times the real tokens, batches of rows sorted by length 1.02 times.
Each row's numbers do not depend on the batch it is in (to float rounding), so callers scatter
results back by index and return them in the caller's order.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence


def length_batches(
    lengths: Sequence[int], batch_size: int, groups: Sequence[Hashable] | None = None
) -> list[list[int]]:
    """Indices of ``lengths`` in batches of at most ``batch_size``, by increasing length (ties
    in the given order), every index exactly once. ``groups``: a key per index; indices with
    one key stay in one batch (a prompt's candidate rows, which a packed batch computes once),
    in the given order, ordered by their longest row; a group larger than ``batch_size`` is a
    batch of its own."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, found {batch_size}")
    if groups is None:
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if len(groups) != len(lengths):
        raise ValueError(f"{len(groups)} group keys for {len(lengths)} lengths")
    members: dict[Hashable, list[int]] = {}
    for i, key in enumerate(groups):
        members.setdefault(key, []).append(i)
    ordered = sorted(members.values(), key=lambda m: max(lengths[i] for i in m))
    batches: list[list[int]] = []
    for group in ordered:
        if batches and len(batches[-1]) + len(group) <= batch_size:
            batches[-1].extend(group)
        else:
            batches.append(list(group))
    return batches


def padded_cost(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> int:
    """Tokens a padded forward computes over ``batches`` (each batch: its rows times its
    longest row), to compare with ``sum(lengths)``."""
    return sum(len(b) * max(lengths[i] for i in b) for b in batches if b)
