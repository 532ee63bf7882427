"""Paired exact McNemar tests (original vs fine-tuned on identical prompts) with BH-FDR.

The paper compares the original and the fine-tuned model prompt by prompt: each prompt is a pair
of 0/1 correctness outcomes. Per group (model x task x test type x condition) the discordant
counts are ``b`` (original correct, fine-tuned incorrect) and ``c`` (original incorrect,
fine-tuned correct); the exact McNemar test is the two-sided binomial test of ``b`` out of
``b + c`` at 1/2. Benjamini-Hochberg FDR is applied within families of groups (the paper: within
model x task x test type, across conditions).

Effect sizes: ``odds_ratio = b / c`` (the paired odds ratio, > 1 when fine-tuning loses answers);
``cohens_g = max(b, c) / (b + c) - 0.5`` (Cohen's g for paired proportions, 0 to 0.5); and
``mcnemar_z = |b - c| / sqrt(b + c)``, which is the quantity the paper's published tables label
"Cohen's g" (kept so that our tables can be set next to theirs).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from interp.stats.checks import (
    as_binary,
    group_label,
    require_columns,
    require_no_missing,
)

log = logging.getLogger(__name__)

ORIGINAL_COL = "correct_original"
FINETUNED_COL = "correct_finetuned"


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts; 1.0 when ``b + c == 0``."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, found b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * sps.binom.cdf(min(b, c), n, 0.5)))


def fdr_bh(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values; NaN entries stay NaN and are not counted."""
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    if ((p[ok] < 0) | (p[ok] > 1)).any():
        raise ValueError("p-values must lie in [0, 1]")
    order = np.argsort(p[ok], kind="mergesort")
    ranked = p[ok][order] * m / np.arange(1, m + 1)
    adjusted = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
    vals = np.empty(m)
    vals[order] = adjusted
    out[ok] = vals
    return out


def pair_outcomes(
    df: pd.DataFrame,
    keys: Sequence[str],
    *,
    arm_col: str = "is_finetuned",
    outcome_col: str = "is_correct",
    original: object = 0,
    finetuned: object = 1,
) -> pd.DataFrame:
    """Long table (one row per prompt and arm) -> one row per prompt with both outcomes.

    ``df`` columns: ``keys`` (identify the prompt: e.g. model, dataset, item, condition,
    template), ``arm_col`` (``original`` / ``finetuned`` value), ``outcome_col`` (0/1).
    Prompts present in only one arm are dropped (logged), as an inner join; a prompt that appears
    twice in one arm is an error. Returns ``keys + [correct_original, correct_finetuned]``.
    """
    keys = list(keys)
    require_columns(df, [*keys, arm_col, outcome_col], "pair_outcomes")
    arms = {original: ORIGINAL_COL, finetuned: FINETUNED_COL}
    sides = []
    for value, name in arms.items():
        side = df.loc[df[arm_col] == value, [*keys, outcome_col]].rename(
            columns={outcome_col: name}
        )
        if side.empty:
            raise ValueError(f"pair_outcomes: no rows with {arm_col}={value!r}")
        dup = side.duplicated(keys)
        if dup.any():
            first = side.loc[dup, keys].iloc[0].to_dict()
            raise ValueError(
                f"pair_outcomes: {int(dup.sum())} duplicate prompt(s) for {arm_col}={value!r}, "
                f"e.g. {first}; add the column that tells them apart to keys"
            )
        sides.append(side)
    merged = sides[0].merge(sides[1], on=keys, how="inner")
    n_drop = len(sides[0]) + len(sides[1]) - 2 * len(merged)
    if n_drop:
        log.info("pair_outcomes: dropped %d prompt(s) present in only one arm", n_drop)
    return merged.reset_index(drop=True)


def _group_row(orig: np.ndarray, ft: np.ndarray) -> dict[str, float | int]:
    """McNemar counts, accuracies and effect sizes of one group of pairs."""
    b = int(((orig == 1) & (ft == 0)).sum())
    c = int(((orig == 0) & (ft == 1)).sum())
    n_disc = b + c
    odds = b / c if c > 0 else (np.inf if b > 0 else np.nan)
    return {
        "n_pairs": len(orig),
        "both_correct": int(((orig == 1) & (ft == 1)).sum()),
        "b": b,
        "c": c,
        "both_incorrect": int(((orig == 0) & (ft == 0)).sum()),
        "acc_original_pct": 100.0 * float(orig.mean()),
        "acc_finetuned_pct": 100.0 * float(ft.mean()),
        "diff_pp": 100.0 * float(ft.mean() - orig.mean()),
        "odds_ratio": odds,
        "cohens_g": max(b, c) / n_disc - 0.5 if n_disc else np.nan,
        "mcnemar_z": abs(b - c) / np.sqrt(n_disc) if n_disc else np.nan,
        "p_value": mcnemar_exact_p(b, c),
    }


def _add_fdr(table: pd.DataFrame, fdr_within: list[str], alpha: float) -> pd.DataFrame:
    """Add ``p_fdr`` and ``fdr_family_size``: BH within each family of ``fdr_within`` values."""
    table = table.copy()
    table["p_fdr"] = np.nan
    table["fdr_family_size"] = 0
    families = (
        table.groupby(fdr_within, sort=False, observed=True, dropna=False).groups.values()
        if fdr_within
        else [table.index]
    )
    for idx in families:
        table.loc[idx, "p_fdr"] = fdr_bh(table.loc[idx, "p_value"].to_numpy())
        table.loc[idx, "fdr_family_size"] = len(idx)
    table["significant"] = table["p_value"] < alpha
    table["significant_fdr"] = table["p_fdr"] < alpha
    return table


def mcnemar_table(
    pairs: pd.DataFrame,
    by: Sequence[str],
    *,
    fdr_within: Sequence[str] = (),
    original_col: str = ORIGINAL_COL,
    finetuned_col: str = FINETUNED_COL,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Exact McNemar test per group of paired outcomes, BH-FDR within families of groups.

    ``pairs``: one row per prompt, with the ``by`` columns and 0/1 (or boolean) correctness of
    the original (``original_col``) and the fine-tuned model (``finetuned_col``) on that prompt;
    see :func:`pair_outcomes`. ``by``: the group columns, e.g. ``["model", "dataset",
    "test_type", "condition"]``. ``fdr_within``: a subset of ``by`` defining the FDR families,
    e.g. ``["model", "dataset", "test_type"]`` (the paper); empty: all groups are one family.

    Groups follow the categories of categorical ``by`` columns: a declared category with no pairs
    (within an observed combination of the other columns) is an error naming the group; remove
    unused categories to skip it. Missing correctness values are an error.

    Returns one row per group: ``by`` columns, ``n_pairs``, ``both_correct``, ``b`` (original
    correct, fine-tuned incorrect), ``c`` (original incorrect, fine-tuned correct),
    ``both_incorrect``, ``acc_original_pct``, ``acc_finetuned_pct``, ``diff_pp`` (fine-tuned
    minus original accuracy, percentage points; negative = fine-tuned worse), ``odds_ratio``
    (b / c; inf if c = 0 < b; NaN if b = c = 0), ``cohens_g``, ``mcnemar_z``, ``p_value`` (exact,
    1.0 without discordant pairs), ``p_fdr``, ``fdr_family_size``, ``significant`` (p < alpha),
    ``significant_fdr`` (p_fdr < alpha).
    """
    by, fdr_within = list(by), list(fdr_within)
    if not by:
        raise ValueError("mcnemar_table: `by` must name at least one group column")
    extra = [c for c in fdr_within if c not in by]
    if extra:
        raise ValueError(f"mcnemar_table: fdr_within {extra} not among by={by}")
    require_columns(pairs, [*by, original_col, finetuned_col], "mcnemar_table")
    if pairs.empty:
        raise ValueError("mcnemar_table: no pairs (empty table)")
    require_no_missing(pairs, [original_col, finetuned_col], "mcnemar_table")
    orig_all = as_binary(pairs[original_col], original_col)
    ft_all = as_binary(pairs[finetuned_col], finetuned_col)
    grouped = pairs.groupby(by, sort=True, observed=False, dropna=False)
    sizes = grouped.size()
    if (sizes == 0).any():
        raise ValueError(
            f"mcnemar_table: no pairs in group {group_label(by, sizes.index[sizes == 0][0])}"
        )
    rows = []
    for key, idx in grouped.indices.items():
        values = key if isinstance(key, tuple) else (key,)
        rows.append(
            {**dict(zip(by, values, strict=True)), **_group_row(orig_all[idx], ft_all[idx])}
        )
    return _add_fdr(pd.DataFrame(rows), fdr_within, alpha)


def paired_p_value(x: np.ndarray, y: np.ndarray, *, binary: bool = True) -> float:
    """Two-sided p-value of paired observations ``x`` vs ``y`` (same units, same order): exact
    McNemar when both are 0/1 (and ``binary``), else a Wilcoxon signed-rank test; 1.0 when
    they are equal, NaN when there is no pair."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size == 0:
        return float("nan")
    if binary and np.isin(x, (0.0, 1.0)).all() and np.isin(y, (0.0, 1.0)).all():
        return mcnemar_exact_p(int(((x == 1) & (y == 0)).sum()), int(((x == 0) & (y == 1)).sum()))
    if np.allclose(x, y):
        return 1.0
    return float(sps.wilcoxon(x, y).pvalue)
