"""The tidy result tables the figures draw: file names, exact columns, checks.

Producers write these CSVs (one row per observation); every figure function checks its input
against :data:`SCHEMAS` first and fails with the missing and the found columns named.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from interp.errors import InterpError

_VERDICT_COLUMNS = (
    "model",
    "intervention",
    "condition",
    "measure",
    "mean",
    "ci_low",
    "ci_high",
    "n_items",
    "diff_vs_warm",
    "diff_low",
    "diff_high",
    "p_value",
)

SCHEMAS: dict[str, tuple[str, ...]] = {
    "warmth_by_epoch": ("variant", "epoch", "instrument", "mean", "ci_low", "ci_high", "n"),
    "error_by_task": ("variant", "task", "cell", "measure", "mean", "ci_low", "ci_high", "n_items"),
    "direction_cosines": ("layer", "a", "b", "cosine"),
    "direction_stability": (
        "direction",
        "layer",
        "cosine",
        "ci_low",
        "ci_high",
        "null_cosine",
        "null_high",
        "relative_norm",
    ),
    "probe_auroc": (
        "probe",
        "site",
        "layer",
        "n",
        "auroc",
        "auroc_low",
        "auroc_high",
        "accuracy",
        "accuracy_low",
        "accuracy_high",
        "shuffled_auroc",
    ),
    "steering_sweep": (
        "direction",
        "layer",
        "alpha",
        "metric",
        "mean",
        "ci_low",
        "ci_high",
        "null_low",
        "null_high",
    ),
    "verdict": _VERDICT_COLUMNS,
    "patching": ("layer", "positions", "patch", "recovered", "ci_low", "ci_high", "n_items"),
    "sae_decomposition": ("direction", "rank", "latent", "cosine", "attribution", "top_examples"),
    "sae_interventions": _VERDICT_COLUMNS,
    # the verdict protocol (interp verdict): gap, arms, null and damage tables
    "verdict_gap": (
        "split",
        "contrast",
        "condition",
        "task",
        "measure",
        "n_items",
        "mean",
        "ci_low",
        "ci_high",
        "gap",
        "gap_low",
        "gap_high",
        "p_value",
        "q_value",
    ),
    "verdict_arms": (
        "arm",
        "condition",
        "task",
        "measure",
        "n_items",
        "mean",
        "ci_low",
        "ci_high",
        "diff_vs_ref",
        "diff_low",
        "diff_high",
        "p_value",
        "q_value",
    ),
    "verdict_null": (
        "target",
        "condition",
        "measure",
        "target_change",
        "null_min",
        "null_median",
        "null_max",
        "percentile",
        "n_null",
        "contrast",
        "contrast_low",
        "contrast_high",
        "n_items",
    ),
    # interp reliability: the paper's regressions of each variant against the baseline
    "regressions": (
        "variant",
        "model",
        "term",
        "coef",
        "se",
        "ci_low",
        "ci_high",
        "p_value",
        "n_obs",
        "n_items",
        "cov_type",
        "note",
    ),
    "marginal_effects": (
        "variant",
        "model",
        "effect",
        "by",
        "level",
        "measure",
        "n_rows",
        "ame_pp",
        "ci_low",
        "ci_high",
        "p_value",
        "q_value",
        "note",
    ),
    "verdict_damage": (
        "arm",
        "measure",
        "n_items",
        "mean",
        "ci_low",
        "ci_high",
        "null_min",
        "null_max",
        "damaged",
    ),
}
"""Table name (the CSV file is ``<name>.csv``) -> its columns, in the producers' order."""

PROPORTION_MEASURES = frozenset({"error", "agrees_with_user", "p_agree"})
"""Measures stored as proportions in [0, 1]; figures show error and agreement in percent."""


class TableError(InterpError, ValueError):
    """A result table does not have the columns or values a figure needs."""


def require_columns(df: pd.DataFrame, columns: Iterable[str], table: str) -> None:
    """Raise :class:`TableError` naming the missing columns (and those found) of ``table``."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise TableError(
            f"{table}: missing column(s) {missing}; found {list(map(str, df.columns))}"
        )
    if df.empty:
        raise TableError(f"{table}: the table has no rows")


def check_table(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Check ``df`` against the schema of table ``name``; returns it unchanged."""
    if name not in SCHEMAS:
        raise TableError(f"unknown result table {name!r}; known: {sorted(SCHEMAS)}")
    require_columns(df, SCHEMAS[name], name)
    return df


def require_values(df: pd.DataFrame, column: str, allowed: Iterable[str], table: str) -> None:
    """Raise if ``column`` holds values outside ``allowed`` (listing the offenders)."""
    allowed = set(allowed)
    bad = sorted({str(v) for v in df[column].dropna().unique()} - allowed)
    if bad:
        raise TableError(
            f"{table}: column {column!r} has unexpected value(s) {bad}; expected {sorted(allowed)}"
        )


def require_proportions(df: pd.DataFrame, columns: Iterable[str], table: str) -> None:
    """Raise if a proportion column has finite values outside [0, 1] (e.g. already in percent)."""
    for col in columns:
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        if finite.size and (finite.min() < -1e-9 or finite.max() > 1 + 1e-9):
            raise TableError(
                f"{table}: column {col!r} should hold proportions in [0, 1], found values in "
                f"[{finite.min():.3g}, {finite.max():.3g}] (already in percent?)"
            )


def has_values(series: pd.Series) -> bool:
    """Whether a numeric column has at least one finite value (CI columns may be all NaN)."""
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    return bool(np.isfinite(values).any())


def read_table(path: str, name: str) -> pd.DataFrame:
    """Read one result CSV and check it against its schema (errors name the file)."""
    try:
        df = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise TableError(f"{path}: cannot read {name} table: {exc}") from exc
    try:
        return check_table(df, name)
    except TableError as exc:
        raise TableError(f"{path}: {exc}") from None


def measure_rows(df: pd.DataFrame, measure: str, table: str) -> pd.DataFrame:
    """The rows of a long table whose ``measure`` is ``measure``; a :class:`TableError` naming
    the table and the measures it has when there are none."""
    part = df[df["measure"].astype(str) == measure]
    if part.empty:
        raise TableError(
            f"{table}: no rows with measure {measure!r}; found "
            f"{sorted(map(str, df['measure'].unique()))}"
        )
    return part
