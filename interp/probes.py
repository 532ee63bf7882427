"""Linear probes per layer with splits grouped by item, and tidy result tables.

A probe is a standardised L2 logistic regression. Folds are grouped (``GroupKFold``), so the
rows of one item (for example both halves of a matched sad/neutral pair) never fall on
opposite sides of a split. AUROC and accuracy come from out-of-fold predictions with 95% CIs
from a bootstrap over items; a shuffled-label control (labels permuted over rows, folds still
grouped) must sit at chance. The weight vector, refitted on all rows and mapped back to the residual
basis, can be compared with any :class:`~interp.directions.Direction`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor

from interp.directions import Direction, cosine
from interp.errors import InterpError


class ProbeError(InterpError, ValueError):
    """Labels or groups cannot support a probe (one class, too few groups, shape mismatch)."""


@dataclass(frozen=True)
class ProbeResult:
    """One layer's probe: out-of-fold metrics with item-bootstrap CIs, control, weights."""

    layer: int
    n: int
    auroc: float
    auroc_low: float
    auroc_high: float
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    shuffled_auroc: float
    weight: Float[Tensor, " d_model"]


def _fit(x: np.ndarray, y: np.ndarray, c: float):  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(x, y)


def _oof_probs(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_folds: int, c: float, seed: int
) -> np.ndarray:
    from sklearn.model_selection import GroupKFold

    probs = np.zeros(len(y))
    folds = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for train, test in folds.split(x, y, groups):
        if len(np.unique(y[train])) < 2:
            probs[test] = y[train].mean()
            continue
        probs[test] = _fit(x[train], y[train], c).predict_proba(x[test])[:, 1]
    return probs


def _auroc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def probe_layer(
    x: Float[Tensor, "n d"] | np.ndarray,
    y: Sequence[int] | np.ndarray,
    groups: Sequence[str] | np.ndarray,
    *,
    layer: int = -1,
    n_folds: int = 5,
    c: float = 1.0,
    n_boot: int = 500,
    seed: int = 0,
) -> ProbeResult:
    """Fit and evaluate one probe. ``y`` is 0/1 per row; ``groups`` names each row's item."""
    xa = x.double().numpy() if isinstance(x, Tensor) else np.asarray(x, dtype=float)
    ya, ga = np.asarray(y, dtype=int), np.asarray(groups)
    if not (len(xa) == len(ya) == len(ga)):
        raise ProbeError(
            f"x, y and groups must have equal rows, found {len(xa)}, {len(ya)}, {len(ga)}"
        )
    if len(np.unique(ya)) < 2:
        raise ProbeError(
            f"layer {layer}: labels hold a single class ({np.unique(ya).tolist()}); nothing to "
            "probe"
        )
    n_groups = len(np.unique(ga))
    if n_groups < n_folds:
        raise ProbeError(f"layer {layer}: {n_groups} groups cannot fill {n_folds} folds")
    probs = _oof_probs(xa, ya, ga, n_folds, c, seed)
    rng = np.random.default_rng(seed)
    unique = np.unique(ga)
    perm_y = rng.permutation(ya)  # the folds stay grouped by item
    shuffled = _auroc(perm_y, _oof_probs(xa, perm_y, ga, n_folds, c, seed))
    index = {g: np.flatnonzero(ga == g) for g in unique}
    aurocs, accs = [], []
    for _ in range(n_boot):
        rows = np.concatenate(
            [index[g] for g in rng.choice(unique, size=len(unique), replace=True)]
        )
        aurocs.append(_auroc(ya[rows], probs[rows]))
        accs.append(float(((probs[rows] > 0.5) == ya[rows]).mean()))
    model = _fit(xa, ya, c)
    scaler, logreg = model[0], model[-1]
    weight = torch.from_numpy(logreg.coef_[0] / scaler.scale_).float()
    a = np.array(aurocs)
    a = a[np.isfinite(a)]
    return ProbeResult(
        layer=layer,
        n=len(ya),
        auroc=_auroc(ya, probs),
        auroc_low=float(np.quantile(a, 0.025)),
        auroc_high=float(np.quantile(a, 0.975)),
        accuracy=float(((probs > 0.5) == ya).mean()),
        accuracy_low=float(np.quantile(accs, 0.025)),
        accuracy_high=float(np.quantile(accs, 0.975)),
        shuffled_auroc=shuffled,
        weight=weight,
    )


def probe_layers(
    activations: Mapping[int, Tensor],
    y: Sequence[int] | np.ndarray,
    groups: Sequence[str] | np.ndarray,
    **kwargs: object,
) -> tuple[pd.DataFrame, dict[int, Tensor]]:
    """One probe per layer: a tidy table (one row per layer) and the weight vectors."""
    results = [
        probe_layer(activations[layer], y, groups, layer=layer, **kwargs)  # type: ignore[arg-type]
        for layer in sorted(activations)
    ]
    table = pd.DataFrame([{k: v for k, v in r.__dict__.items() if k != "weight"} for r in results])
    return table, {r.layer: r.weight for r in results}


def weight_direction_cosines(
    weights: Mapping[int, Tensor], directions: Sequence[Direction], probe: str
) -> pd.DataFrame:
    """Cosine between a probe's weight vector and each direction, per shared layer."""
    rows = [
        {"probe": probe, "direction": d.name, "layer": layer, "cosine": cosine(w, d.at(layer))}
        for d in directions
        for layer, w in sorted(weights.items())
        if layer in d.layers
    ]
    return pd.DataFrame(rows, columns=["probe", "direction", "layer", "cosine"])
