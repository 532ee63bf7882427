"""Split-half stability of a definition with halves drawn over items, and its null.

:func:`interp.directions.split_half_stability` splits rows; here the halves are halves of the
items (groups), so the several rows of one item (its templates and conditions) never fall on both
sides, and unpaired contrasts (sycophancy: agree vs hold prompts) work too. Optional strata (for
example which letter agrees in a counterbalanced A/B question) are split evenly between halves.

The null keeps the noise and removes any consistent direction: the sides are first centred within
each stratum (paired: every difference minus its stratum's mean difference; unpaired: every row
minus its side's mean in its stratum), then paired rows are swapped at random (sign flip) or
unpaired labels permuted. Centring within strata matters for counterbalanced A/B questions,
whose differences carry the letters' own identity with a sign set by the option order.
Without the centring a strong real direction survives the flips as a random multiple of itself
and the null of split-half cosines piles up at +-1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from interp.directions import METHODS, DirectionError


def _halves(
    groups: np.ndarray, rng: np.random.Generator, strata: Mapping[str, str] | None
) -> tuple[set[str], set[str]]:
    """Two random halves of the groups, each stratum split as evenly as it can be."""
    unique = np.unique(groups)
    by_stratum: dict[str, list[str]] = {}
    for g in unique:
        by_stratum.setdefault((strata or {}).get(str(g), ""), []).append(str(g))
    a: set[str] = set()
    b: set[str] = set()
    for name in sorted(by_stratum):
        members = rng.permutation(by_stratum[name])
        k = len(members) // 2 + (len(members) % 2 and len(a) < len(b))
        a.update(members[:k])
        b.update(members[k:])
    return a, b


def _numpy_method(method: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The direction method on float64 arrays (mean difference natively, others through torch)."""
    if method == "mean_diff":
        return lambda p, q: p.mean(0) - q.mean(0)
    fn, _ = METHODS[method]
    return lambda p, q: (
        fn(torch.from_numpy(p).float(), torch.from_numpy(q).float()).double().numpy()
    )


def _centred(
    pos: np.ndarray,
    neg: np.ndarray,
    pg: np.ndarray,
    ng: np.ndarray,
    paired: bool,
    strata: Mapping[str, str] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Both sides with every consistent difference removed, within each stratum: paired rows
    lose their stratum's mean difference (half from each side), unpaired rows their side's mean
    within the stratum (replaced by the stratum's pooled mean)."""
    pos, neg = pos.copy(), neg.copy()
    ps = np.array([(strata or {}).get(str(g), "") for g in pg])
    ns = np.array([(strata or {}).get(str(g), "") for g in ng])
    for stratum in np.unique(np.concatenate([ps, ns])):
        pm, nm = ps == stratum, ns == stratum
        if paired:
            shift = (pos[pm] - neg[pm]).mean(0) / 2
            pos[pm] -= shift
            neg[pm] += shift
        else:
            centre = np.concatenate([pos[pm], neg[nm]]).mean(0)
            if pm.any():
                pos[pm] += centre - pos[pm].mean(0)
            if nm.any():
                neg[nm] += centre - neg[nm].mean(0)
    return pos, neg


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return 0.0 if na == 0 or nb == 0 else float(a @ b / (na * nb))


def grouped_split_half(
    method: str,
    pos: Float[Tensor, "n d"],
    neg: Float[Tensor, "m d"],
    pos_groups: np.ndarray | list[str] | tuple[str, ...],
    neg_groups: np.ndarray | list[str] | tuple[str, ...],
    *,
    paired: bool,
    strata: Mapping[str, str] | None = None,
    n_splits: int = 50,
    seed: int = 0,
) -> dict[str, float]:
    """Cosine between the directions of two random halves of the items.

    Returns ``cosine`` (mean over splits), ``ci_low``/``ci_high`` (2.5 and 97.5 percentiles over
    splits), ``null_cosine`` and ``null_high`` (mean and 97.5 percentile under the null).
    ``strata`` maps a group to its stratum (groups not in it share one stratum)."""
    _, needs_pairs = METHODS[method]
    pg, ng = np.asarray(pos_groups, dtype=str), np.asarray(neg_groups, dtype=str)
    if len(pg) != len(pos) or len(ng) != len(neg):
        raise DirectionError("every row needs a group")
    if needs_pairs and not paired:
        raise DirectionError(f"method {method!r} needs paired rows; this contrast is unpaired")
    if paired and (len(pos) != len(neg) or not np.array_equal(pg, ng)):
        raise DirectionError("paired rows need equal counts and the same groups")
    n_items = len(np.unique(np.concatenate([pg, ng])))
    if n_items < 4:
        raise DirectionError(f"need at least 4 items for split halves, found {n_items}")
    rng = np.random.default_rng(seed)
    direction = _numpy_method(method)
    pos_a, neg_a = (
        pos.double().numpy(),
        neg.double().numpy(),
    )  # numpy: small ops stay single-threaded

    def one(p: np.ndarray, q: np.ndarray, p_groups: np.ndarray, q_groups: np.ndarray) -> float:
        a, b = _halves(np.concatenate([p_groups, q_groups]), rng, strata)
        vecs = []
        for half in (a, b):
            pm, qm = np.isin(p_groups, list(half)), np.isin(q_groups, list(half))
            if min(int(pm.sum()), int(qm.sum())) < 2:
                return float("nan")  # a half without two rows on each side
            vecs.append(direction(p[pm], q[qm]))
        return _cos(vecs[0], vecs[1])

    real = np.array([one(pos_a, neg_a, pg, ng) for _ in range(n_splits)])
    null = []
    pos_c, neg_c = _centred(pos_a, neg_a, pg, ng, paired, strata)
    for _ in range(n_splits):
        if paired:
            flip = rng.integers(0, 2, len(pos_a)).astype(bool)[:, None]
            null.append(one(np.where(flip, neg_c, pos_c), np.where(flip, pos_c, neg_c), pg, ng))
        else:
            pooled = np.concatenate([pos_c, neg_c])
            groups = np.concatenate([pg, ng])
            is_pos = np.zeros(len(pooled), dtype=bool)
            is_pos[rng.permutation(len(pooled))[: len(pos_a)]] = True
            null.append(one(pooled[is_pos], pooled[~is_pos], groups[is_pos], groups[~is_pos]))
    real, nulls = real[np.isfinite(real)], np.array(null)[np.isfinite(null)]
    if len(real) == 0:
        raise DirectionError(
            "no split left two rows on each side in both halves; too few rows per side"
        )
    return {
        "cosine": float(real.mean()),
        "ci_low": float(np.quantile(real, 0.025)),
        "ci_high": float(np.quantile(real, 0.975)),
        "null_cosine": float(nulls.mean()) if len(nulls) else float("nan"),
        "null_high": float(np.quantile(nulls, 0.975)) if len(nulls) else float("nan"),
    }
