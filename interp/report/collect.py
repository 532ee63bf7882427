"""Collect the study's result tables from step folders (one CSV per known table name)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from interp.config import ConfigError
from interp.errors import InputNotFoundError
from interp.figures.render import find_tables
from interp.figures.tables import read_table
from interp.report.results import ResultTable, nearest_meta
from interp.report.verdict import verdict_sentences

MERGEABLE = ("warmth_by_epoch", "error_by_task")
"""Tables with a ``variant`` column: one per run (warm, cold ...) is stacked into one table."""

STAT_COLUMNS = ("mean", "ci_low", "ci_high", "n", "n_items")
"""Columns that are measured, not keys: rows equal in every other column are the same row."""


def collect_tables(
    folders: Iterable[str | Path], merge_dir: Path | None = None, *, option: str = "results"
) -> dict[str, Path]:
    """Known table name -> CSV across the folders.

    A name found in several folders is an error, except the per-variant tables of
    :data:`MERGEABLE`, which are stacked (rows repeated across runs, like the original model's
    epoch 0, kept once) into ``merge_dir``. ``option`` names the option the folders came from
    (in error messages).
    """
    found: dict[str, list[Path]] = {}
    for folder in folders:
        path = Path(folder)
        if not path.is_dir():
            raise InputNotFoundError(f"{option}: {folder} is not a folder")
        for name, csv in find_tables(path).items():
            found.setdefault(name, []).append(csv)
    out: dict[str, Path] = {}
    for name, csvs in found.items():
        if len(csvs) == 1:
            out[name] = csvs[0]
        elif name in MERGEABLE and merge_dir is not None:
            merged = pd.concat([pd.read_csv(c) for c in csvs], ignore_index=True)
            keys = [c for c in merged.columns if c not in STAT_COLUMNS]
            merged = merged.drop_duplicates(subset=keys, keep="first")
            merge_dir.mkdir(parents=True, exist_ok=True)
            out[name] = merge_dir / f"{name}.csv"
            merged.to_csv(out[name], index=False)
        else:
            raise ConfigError(
                f"{name}.csv is in several result folders: {', '.join(map(str, csvs))}"
            )
    return out


def result_tables(tables: dict[str, Path]) -> dict[str, ResultTable]:
    """Each collected table read and checked, with the nearest meta.json of its folder."""
    return {
        name: ResultTable(read_table(str(csv), name), nearest_meta(csv, csv.parent.parent), csv)
        for name, csv in tables.items()
    }


def verdict_text(tables: dict[str, Path]) -> list[str]:
    """The verdict sentences: the verdict protocol's verdict.md when it ran, else the ablation
    step's verdict.md, else built from verdict.csv."""
    if "verdict_gap" in tables:
        md = tables["verdict_gap"].parent / "verdict.md"
        lines = [
            ln.strip()
            for ln in md.read_text().splitlines()
            if ln.strip() and not ln.startswith("#")
        ]
        if lines:
            return lines
    if "verdict" not in tables:
        return ["No verdict: the ablation step has not run, so there is no causal result yet."]
    md = tables["verdict"].parent / "verdict.md"
    if md.is_file():
        lines = [
            line.strip()
            for line in md.read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        if lines:
            return lines
    return verdict_sentences(read_table(str(tables["verdict"]), "verdict"))
