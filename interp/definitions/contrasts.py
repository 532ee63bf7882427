"""What a direction definition is made of: named row sets and a positive/negative contrast.

A :class:`RowSet` is a list of prompts (cache rows) read at one position; the activations of a
row set come from one cache per model ("base" or "adapter") and site kind. A :class:`Contrast`
names which rows (of which row set, through which model) form the positive and the negative side
of one definition, which item each row belongs to (splits are grouped by item), and whether the
two sides are paired row by row. :func:`gather` turns a contrast into per-layer activations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor

from interp.cache import CachedActivations, CacheRow
from interp.errors import InterpError
from interp.positions import PositionSpec
from interp.sites import Site

ModelSide = Literal["base", "adapter"]


class ContrastError(InterpError, ValueError):
    """A contrast is inconsistent (unknown rows, unequal pairs, too few rows or items)."""


@dataclass(frozen=True)
class RowSet:
    """Prompts read at one position (one cache per model and site kind holds them)."""

    key: str
    rows: tuple[CacheRow, ...]
    position: str

    def __post_init__(self) -> None:
        PositionSpec.parse(self.position)
        ids = [r.id for r in self.rows]
        if len(set(ids)) != len(ids):
            raise ContrastError(f"row set {self.key!r} has duplicate row ids")
        if not ids:
            raise ContrastError(f"row set {self.key!r} is empty")


@dataclass(frozen=True)
class Ref:
    """One row of a row set, read through one model."""

    model: ModelSide
    rowset: str
    row_id: str


@dataclass(frozen=True)
class Contrast:
    """The positive and negative rows of one definition.

    ``pos_groups`` / ``neg_groups`` name each row's item. With ``paired`` the i-th positive and
    negative rows belong together (same item, same prompt up to the contrasted change).
    ``strata`` pairs an item with a stratum that split halves keep balanced (e.g. which letter
    agrees with the user in a counterbalanced A/B question).
    """

    name: str
    description: str
    pos: tuple[Ref, ...]
    neg: tuple[Ref, ...]
    pos_groups: tuple[str, ...]
    neg_groups: tuple[str, ...]
    paired: bool
    strata: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if len(self.pos) != len(self.pos_groups) or len(self.neg) != len(self.neg_groups):
            raise ContrastError(f"{self.name}: every row needs exactly one group")
        if self.paired and (len(self.pos) != len(self.neg) or self.pos_groups != self.neg_groups):
            raise ContrastError(f"{self.name}: paired sides need equal lengths and the same groups")
        if min(len(self.pos), len(self.neg)) < 2:
            raise ContrastError(
                f"{self.name}: needs at least two rows on each side, found {len(self.pos)} "
                "positive "
                f"and {len(self.neg)} negative"
            )

    @property
    def models(self) -> set[ModelSide]:
        return {r.model for r in (*self.pos, *self.neg)}

    @property
    def rowsets(self) -> set[tuple[ModelSide, str]]:
        """The (model, row set) caches this contrast reads."""
        return {(r.model, r.rowset) for r in (*self.pos, *self.neg)}

    @property
    def n_items(self) -> int:
        return len(set(self.pos_groups) | set(self.neg_groups))


def _rows_of(
    refs: tuple[Ref, ...],
    caches: Mapping[tuple[ModelSide, str], CachedActivations],
    rowsets: Mapping[str, RowSet],
    site: Site,
) -> Float[Tensor, "n d_model"]:
    """The activations of ``refs`` at ``site`` (slot 0 of each row's position), in order."""
    out = torch.empty(0)
    by_source: dict[tuple[ModelSide, str], list[int]] = {}
    for i, r in enumerate(refs):
        by_source.setdefault((r.model, r.rowset), []).append(i)
    for source, indices in by_source.items():
        if source not in caches:
            raise ContrastError(f"no cache for {source[1]!r} through the {source[0]} model")
        cache = caches[source]
        index = {rid: j for j, rid in enumerate(cache.row_ids)}
        missing = [refs[i].row_id for i in indices if refs[i].row_id not in index]
        if missing:
            raise ContrastError(
                f"cache {cache.folder} lacks rows {missing[:3]} (of {len(missing)})"
            )
        values = cache.load(site, rowsets[source[1]].position)[:, 0]
        if out.numel() == 0:
            out = torch.empty(len(refs), values.shape[-1], dtype=torch.float32)
        out[indices] = values[[index[refs[i].row_id] for i in indices]].float()
    return out


def gather(
    contrast: Contrast,
    caches: Mapping[tuple[ModelSide, str], CachedActivations],
    rowsets: Mapping[str, RowSet],
    site_kind: str,
    layers: tuple[int, ...],
) -> tuple[dict[int, Tensor], dict[int, Tensor]]:
    """Per-layer positive and negative activations ``{layer: (n, d_model)}`` of a contrast."""
    pos, neg = {}, {}
    for layer in layers:
        site = Site(layer, site_kind)  # type: ignore[arg-type]
        pos[layer] = _rows_of(contrast.pos, caches, rowsets, site)
        neg[layer] = _rows_of(contrast.neg, caches, rowsets, site)
    return pos, neg
