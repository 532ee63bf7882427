"""The provenance of each result, read from its meta.json: command, config hash, hashes, commit."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd

from interp.artifacts import sha256_json
from interp.report.results import ResultTable

PROVENANCE_COLUMNS = (
    "result",
    "command",
    "config hash",
    "model",
    "model hashes",
    "data hashes",
    "git commit",
    "created",
)
_MODEL_WORDS = ("weights", "adapter", "model")


def _hashes(obj: Any, prefix: str = "", depth: int = 0) -> Iterator[tuple[str, str]]:
    """(dotted key, value) of every field named ``*hash*`` or ``*sha256*`` (nested up to 3
    levels)."""
    if depth > 3 or not isinstance(obj, Mapping):
        return
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _hashes(value, f"{name}.", depth + 1)
        elif (
            isinstance(value, str)
            and value
            and ("hash" in str(key).lower() or "sha256" in str(key).lower())
            and str(key) != "config_hash"
        ):
            yield name, value


def _short(value: str) -> str:
    return value[:12]


def provenance_row(name: str, meta: Mapping[str, Any]) -> dict[str, str]:
    """One row of the provenance table. Missing fields read "not recorded"."""
    missing = "not recorded"
    command = meta.get("command") or (f"interp {meta['stage']}" if meta.get("stage") else missing)
    if isinstance(command, list | tuple):
        command = " ".join(map(str, command))
    if meta.get("config_hash"):
        config_hash = str(meta["config_hash"])
    elif isinstance(meta.get("config"), Mapping):
        config_hash = f"{sha256_json(meta['config'])[:12]} (of meta config)"
    else:
        config_hash = missing
    found = list(_hashes(meta))
    model_h = [f"{k}={_short(v)}" for k, v in found if any(w in k.lower() for w in _MODEL_WORDS)]
    data_h = [f"{k}={_short(v)}" for k, v in found if not any(w in k.lower() for w in _MODEL_WORDS)]
    model = meta.get("model")
    if meta.get("adapter"):
        model = f"{model} + {meta['adapter']}"
    return {
        "result": name,
        "command": str(command),
        "config hash": config_hash,
        "model": str(model) if model else missing,
        "model hashes": "; ".join(model_h) or missing,
        "data hashes": "; ".join(data_h) or missing,
        "git commit": str(meta.get("git_commit") or missing),
        "created": str(meta.get("created") or missing),
    }


def provenance_table(results: Mapping[str, ResultTable]) -> pd.DataFrame:
    """Provenance rows of every result, in the order given."""
    return pd.DataFrame(
        [provenance_row(n, r.meta) for n, r in results.items()], columns=list(PROVENANCE_COLUMNS)
    )
