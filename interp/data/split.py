"""The one split of items into a derivation half and an evaluation half.

Items that derive a direction, a probe, a sycophancy label, or a choice of layer, alpha or
headline cell never evaluate it. An item's side is a pure function of its id (sha256 of a salt
and the id), so the split is the same on every machine, for every model and for items added
later, and it never depends on file order or on which items happen to be selected.

Every artifact that reads items records :func:`split_record` in its meta.json.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, Literal, TypeVar

from interp.data.items import Item, select_items

Side = Literal["derivation", "evaluation"]
SALT = "interp-item-split-v1"
DERIVATION_FRACTION = 0.5

T = TypeVar("T")


def side_of(item_id: str, fraction: float = DERIVATION_FRACTION) -> Side:
    """``"derivation"`` for a stable ``fraction`` of item ids, ``"evaluation"`` for the rest."""
    digest = hashlib.sha256(f"{SALT}:{item_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return "derivation" if u < fraction else "evaluation"


def split_items(
    items: Sequence[Item],
    side: Side,
    *,
    tasks: Iterable[str] | None = None,
    per_task: int | None = None,
) -> list[Item]:
    """The items on ``side`` (in their order), at most ``per_task`` of each task."""
    return select_items([i for i in items if side_of(i.id) == side], tasks, per_task)


def split_record(side: Side, item_ids: Iterable[str]) -> dict[str, Any]:
    """What meta.json records about the split an artifact read: the rule and the ids used."""
    ids = sorted(set(item_ids))
    wrong = [i for i in ids if side_of(i) != side]
    if wrong:
        raise ValueError(
            f"{len(wrong)} item(s) read as {side} belong to the other side: {wrong[:5]}"
        )
    return {
        "side": side,
        "salt": SALT,
        "derivation_fraction": DERIVATION_FRACTION,
        "rule": "sha256(salt:id) < fraction -> derivation",
        "n_items": len(ids),
        "item_ids": ids,
    }
