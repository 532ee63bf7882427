"""Loaders for the real data formats; each maps records to the one :class:`~interp.data.items.Item`
schema.

Every loader takes ``(path, skip_invalid=False, task=None)`` and returns a :class:`LoadResult`.
A malformed record stops the loader with a :class:`~interp.data.errors.DataFormatError` naming
file, line and field; with ``skip_invalid=True`` it is skipped and counted in
``result.report`` instead. Nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from interp.data.errors import DataFormatError, SkipReport
from interp.data.items import read_items_jsonl
from interp.data.loaders.anthropic_ab import load_anthropic_ab
from interp.data.loaders.base import LoadResult, stable_id
from interp.data.loaders.eval_data import load_eval_data, load_eval_data_prompts
from interp.data.loaders.mask import load_mask_csv
from interp.data.loaders.medqa import load_medqa
from interp.data.loaders.sycophancy_eval import load_sycophancy_eval
from interp.data.loaders.truthfulqa import load_truthfulqa_csv

Loader = Callable[..., LoadResult]


def load_interp_items(
    path: Path, skip_invalid: bool = False, task: str | None = None
) -> LoadResult:
    """Items in the interp item schema (JSON lines), as in ``interp/resources/items``."""
    items, report = read_items_jsonl(Path(path), skip_invalid)
    if task is not None:
        bad = [i.id for i in items if i.task != task]
        if bad:
            raise DataFormatError(
                f"items {bad[:3]} are not of task {task!r}", file=path, field="task"
            )
    if not items:
        raise DataFormatError("no valid item in the file", file=path)
    return LoadResult(Path(path), "interp", items, report)


FORMATS: dict[str, Loader] = {
    "interp": load_interp_items,
    "eval_data": load_eval_data,
    "sycophancy_eval": load_sycophancy_eval,
    "truthfulqa_csv": load_truthfulqa_csv,
    "medqa": load_medqa,
    "mask_csv": load_mask_csv,
    "anthropic_ab": load_anthropic_ab,
}


def load_items(
    path: Path, format: str, *, skip_invalid: bool = False, task: str | None = None
) -> LoadResult:
    """Load items from a user's file in one of :data:`FORMATS`."""
    if format not in FORMATS:
        raise DataFormatError(
            f"unknown data format {format!r}; formats are {sorted(FORMATS)}", file=path
        )
    return FORMATS[format](Path(path), skip_invalid=skip_invalid, task=task)


__all__ = [
    "FORMATS",
    "LoadResult",
    "SkipReport",
    "load_anthropic_ab",
    "load_eval_data",
    "load_eval_data_prompts",
    "load_interp_items",
    "load_items",
    "load_mask_csv",
    "load_medqa",
    "load_sycophancy_eval",
    "load_truthfulqa_csv",
    "stable_id",
]
