"""The verdict sentence, with its numbers, from the verdict table."""

from __future__ import annotations

import math

import pandas as pd

from interp.figures.tables import TableError, check_table
from interp.figures.verdict import CONDITION_ORDER, UNITS


def _fmt(x: float, unit: str) -> str:
    return f"{x:+.1f} {unit}" if unit == "pp" else f"{x:+.3f}"


def _ci(row: pd.Series, k: float, unit: str) -> str:
    lo, hi = row["diff_low"] * k, row["diff_high"] * k
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "no CI"
    where = "excludes" if lo > 0 or hi < 0 else "includes"
    return f"95% CI {_fmt(lo, unit)} to {_fmt(hi, unit)}, {where} zero"


def verdict_sentences(
    verdict: pd.DataFrame, measure: str = "error", condition: str | None = None
) -> list[str]:
    """One sentence per intervention on the warm model, each with its paired difference from
    the unablated warm model, CI, p-value and item count, set against the original-minus-warm
    gap (what a full repair would close). ``condition`` defaults to the hardest cell present
    (sad + wrong belief, ...)."""
    check_table(verdict, "verdict")
    part = verdict[verdict["measure"].astype(str) == measure]
    if part.empty:
        raise TableError(f"verdict: no rows with measure {measure!r}")
    if condition is None:
        present = set(part["condition"].astype(str))
        condition = next((c for c in reversed(CONDITION_ORDER) if c in present), sorted(present)[0])
    part = part[part["condition"].astype(str) == condition]
    if part.empty:
        raise TableError(f"verdict: no {measure} rows for condition {condition!r}")
    _, unit, k = UNITS.get(measure, (measure, "units", 1.0))
    original = part[(part["model"] == "original") & (part["intervention"] == "none")]
    gap = float(original["diff_vs_warm"].iloc[0]) * k if len(original) else math.nan
    out = []
    for _, row in part[(part["model"] == "warm") & (part["intervention"] != "none")].iterrows():
        d = float(row["diff_vs_warm"]) * k
        what = (
            "a random direction of equal norm"
            if "random" in str(row["intervention"])
            else f"'{row['intervention']}'"
        )
        text = (
            f"On {condition} prompts, applying {what} to the warm model changed {measure} by "
            f"{_fmt(d, unit)} "
            f"({_ci(row, k, unit)}; p = {row['p_value']:.3g}; {int(row['n_items'])} items)"
        )
        if math.isfinite(gap) and gap != 0 and math.isfinite(d):
            text += f", {d / gap:.0%} of the {_fmt(gap, unit)} original-minus-warm gap"
        out.append(text + ".")
    if not out:
        raise TableError(f"verdict: no intervention rows on the warm model for {condition!r}")
    return out
