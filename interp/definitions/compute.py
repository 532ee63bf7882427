"""Definitions -> directions with their reliability: stability, relative norm, nulls, cosines.

Pure computation on cached activations: :func:`definition_directions` derives one
:class:`~interp.directions.Direction` per definition and method at every requested layer, with a
tidy stability table (split halves over items, their null, and the direction's norm relative to
the residual norm). Direction labels are the definition's name for ``mean_diff`` and
``<name>-<method>`` for other methods; the same labels name the saved folders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from torch import Tensor

from interp.cache import CachedActivations
from interp.definitions.contrasts import Contrast, ModelSide, gather
from interp.definitions.inputs import Prepared
from interp.definitions.stability import grouped_split_half
from interp.directions import METHODS, Direction, cosine_table, derive, relative_norm
from interp.figures.tables import SCHEMAS

STABILITY_COLUMNS = list(SCHEMAS["direction_stability"])
COSINE_COLUMNS = list(SCHEMAS["direction_cosines"])


def label_of(name: str, method: str) -> str:
    """``persona`` for the default method, ``persona-pca`` otherwise."""
    return name if method == "mean_diff" else f"{name}-{method}"


def methods_for(contrast: Contrast, methods: Sequence[str]) -> list[str]:
    """The methods that apply to a contrast (paired-only methods skip unpaired contrasts)."""
    return [m for m in methods if contrast.paired or not METHODS[m][1]]


def contrast_activations(
    prepared: Prepared,
    name: str,
    caches: Mapping[tuple[ModelSide, str, str], CachedActivations],
    site_kind: str,
    layers: tuple[int, ...],
) -> tuple[dict[int, Tensor], dict[int, Tensor]]:
    """Per-layer ``(n, d_model)`` positive and negative activations of one definition."""
    by_rowset = {
        (side, key): cache for (side, key, kind), cache in caches.items() if kind == site_kind
    }
    return gather(prepared.contrasts[name], by_rowset, prepared.rowsets, site_kind, layers)


def definition_directions(
    prepared: Prepared,
    caches: Mapping[tuple[ModelSide, str, str], CachedActivations],
    *,
    site_kind: str,
    layers: tuple[int, ...],
    methods: Sequence[str] = ("mean_diff",),
    n_splits: int = 50,
    seed: int = 0,
    with_stability: bool = True,
) -> tuple[list[Direction], pd.DataFrame]:
    """Every definition x applicable method: the direction and (``with_stability``) one
    stability row per layer."""
    directions, rows = [], []
    for name, contrast in prepared.contrasts.items():
        pos, neg = contrast_activations(prepared, name, caches, site_kind, layers)
        for method in methods_for(contrast, methods):
            d = derive(
                name,
                method,
                pos,
                neg,
                site_kind=site_kind,
                position=prepared.position(name),
                sources={
                    f"{side}:{key}": str(caches[(side, key, site_kind)].folder)
                    for side, key in contrast.rowsets
                },
            )
            label = label_of(name, method)
            d.meta.update(
                label=label,
                description=contrast.description,
                n_pos=len(contrast.pos),
                n_neg=len(contrast.neg),
                n_items=contrast.n_items,
                paired=contrast.paired,
            )
            directions.append(d)
            for layer in layers if with_stability else ():
                stab = grouped_split_half(
                    method,
                    pos[layer],
                    neg[layer],
                    contrast.pos_groups,
                    contrast.neg_groups,
                    paired=contrast.paired,
                    strata=dict(contrast.strata),
                    n_splits=n_splits,
                    seed=seed,
                )
                pooled = torch.cat([pos[layer], neg[layer]])
                rows.append(
                    {
                        "direction": label,
                        "layer": layer,
                        **stab,
                        "relative_norm": relative_norm(d.at(layer), pooled),
                    }
                )
    return directions, pd.DataFrame(rows, columns=STABILITY_COLUMNS)


def definition_cosines(directions: Sequence[Direction]) -> pd.DataFrame:
    """Cosine between every pair of definitions of the same method, per layer (labels in a, b)."""
    tables = []
    for method in dict.fromkeys(d.method for d in directions):
        same = [d for d in directions if d.method == method]
        t = cosine_table(same)
        names = {d.name: str(d.meta.get("label", d.name)) for d in same}
        t["a"], t["b"] = t["a"].map(names), t["b"].map(names)
        tables.append(t)
    if not tables:
        return pd.DataFrame(columns=COSINE_COLUMNS)
    return pd.concat(tables, ignore_index=True)[COSINE_COLUMNS]
