"""Result tables for the report: a tidy frame, its meta.json, and where it came from."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from interp import paths
from interp.config import ConfigError
from interp.figures.render import find_tables
from interp.figures.tables import read_table


class ResultTable(NamedTuple):
    """One result: the tidy table, its producer's meta.json (may be empty) and its CSV path."""

    frame: pd.DataFrame
    meta: dict[str, Any]
    source: Path | None = None


def as_result_tables(results: Mapping[str, Any]) -> dict[str, ResultTable]:
    """Accept ``name -> ResultTable`` or ``name -> (DataFrame, meta dict)``."""
    out = {}
    for name, value in results.items():
        if isinstance(value, ResultTable):
            out[name] = value
        elif (
            isinstance(value, tuple)
            and len(value) in (2, 3)
            and isinstance(value[0], pd.DataFrame)
            and isinstance(value[1], Mapping)
        ):
            out[name] = ResultTable(value[0], dict(value[1]), *value[2:])
        else:
            raise ConfigError(
                f"result {name!r}: expected (DataFrame, meta dict), found {type(value).__name__}"
            )
    return out


def nearest_meta(csv: Path, stop: Path) -> dict[str, Any]:
    """The meta.json beside ``csv`` or in the closest folder above it, up to ``stop``; {} if
    none."""
    folder = csv.parent
    while True:
        meta = folder / paths.META_FILE
        if meta.is_file():
            try:
                loaded = json.loads(meta.read_text())
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"{meta}: not valid JSON (line {exc.lineno}: {exc.msg})"
                ) from None
            return loaded if isinstance(loaded, dict) else {"meta": loaded}
        if folder == stop or folder.parent == folder:
            return {}
        folder = folder.parent


def load_results(results_dir: Path) -> dict[str, ResultTable]:
    """Every known result table under ``results_dir`` with its nearest meta.json."""
    results_dir = Path(results_dir)
    return {
        name: ResultTable(read_table(str(p), name), nearest_meta(p, results_dir), p)
        for name, p in find_tables(results_dir).items()
    }
