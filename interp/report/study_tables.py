"""Copy a finished study's small summary tables into ``results/<preset>/tables/`` for committing.

``interp study`` leaves one folder per step (``state.json`` records where each step wrote); the
RESULTS.md blocks of :mod:`interp.report.study_blocks` are written from the CSV summary tables
of those folders. :func:`export_study_tables` copies each step's tables listed in
:data:`STEP_TABLES` (never activations, vectors or per-prompt rows) to
``<dest>/<step id>/<file>``, adds the few small tables a block needs from a step's ``meta.json``
or JSON summary (:data:`DERIVED_TABLES`), and writes ``provenance.json``: per step its folder,
the git commit and creation time of its ``meta.json`` and the files copied.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from interp import paths
from interp.artifacts import write_json_atomic
from interp.errors import InputNotFoundError, InterpError

_FINETUNE = ("warmth_by_epoch.csv", "warmth_vs_original.csv")
_EVAL = ("summary.csv", "contrasts.csv")

STEP_TABLES: dict[str, tuple[str, ...]] = {
    "01-finetune-warm": _FINETUNE,
    "02-finetune-cold": _FINETUNE,
    "03-eval-original": _EVAL,
    "04-eval-warm": _EVAL,
    "05-eval-cold": _EVAL,
    "06-eval-warm-sysprompt": _EVAL,
    "07-reliability": (
        "error_by_task.csv",
        "variant_contrasts.csv",
        "regressions.csv",
        "marginal_effects.csv",
    ),
    "08-directions": ("direction_stability.csv", "direction_cosines.csv"),
    "09-probes": ("probe_auroc.csv", "probe_direction_cosines.csv"),
    "10-trajectory": ("trajectory.csv", "trajectory_warmth.csv"),
    "11-sweep": ("steering_sweep.csv",),
    "13-patch": ("patching.csv",),
    "14-sae-train": (),
    "15-sae-decompose": ("sae_decomposition.csv", "latent_overlap.csv"),
    "16-sae-intervene": ("sae_interventions.csv",),
}
"""Step id -> the summary CSVs copied from its folder as they are."""

PROVENANCE_FILE = "provenance.json"
MAX_TABLE_BYTES = 1_000_000  # a summary table; anything larger is per-prompt rows or tensors


def _flatten(obj: Any, prefix: str = "") -> list[dict[str, Any]]:
    """``{"a": {"b": 1}}`` -> rows ``measure="a.b", value=1`` (lists are left out)."""
    if isinstance(obj, dict):
        rows: list[dict[str, Any]] = []
        for key, value in obj.items():
            rows += _flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(obj, list):
        return []
    return [{"measure": prefix, "value": obj}]


def finetune_run(folder: Path, meta: dict[str, Any]) -> pd.DataFrame:
    """One row of a fine-tune run's facts from its meta.json: variant, preset, n_examples,
    steps_run, final_epoch, tokens_trained, train_seconds, warmth_seconds, total_seconds,
    tokens_per_s."""
    keys = ("variant", "preset", "n_examples", "steps_run", "final_epoch", "tokens_trained",
            "train_seconds", "warmth_seconds", "total_seconds", "tokens_per_s")  # fmt: skip
    return pd.DataFrame([{k: meta.get(k) for k in keys}])


def direction_null(folder: Path, meta: dict[str, Any]) -> pd.DataFrame:
    """The random-direction cosine band of ``interp directions`` (mean_abs, q95_abs: |cosine|
    between random unit directions in the residual space)."""
    null = meta.get("random_direction_null")
    if not isinstance(null, dict):
        raise InterpError(f"{folder / paths.META_FILE}: no random_direction_null field")
    return pd.DataFrame([{"mean_abs": null.get("mean_abs"), "q95_abs": null.get("q95_abs")}])


def sae_quality(folder: Path, meta: dict[str, Any]) -> pd.DataFrame:
    """``sae_quality.json`` and the SAE's spec as rows ``measure, value`` (``quality.held_out.
    explained_variance``, ``spec.k``, ``n_tokens``, ...)."""
    source = folder / "sae_quality.json"
    if not source.is_file():
        raise InputNotFoundError(
            f"{folder} has no sae_quality.json (not an `interp sae train` run)"
        )
    quality = json.loads(source.read_text())
    return pd.DataFrame(
        _flatten(
            {"quality": quality, "spec": meta.get("spec", {}), "n_tokens": meta.get("n_tokens")}
        ),
        columns=["measure", "value"],
    )


DERIVED_TABLES: dict[
    str, tuple[tuple[str, Callable[[Path, dict[str, Any]], pd.DataFrame]], ...]
] = {
    "01-finetune-warm": (("finetune_run.csv", finetune_run),),
    "02-finetune-cold": (("finetune_run.csv", finetune_run),),
    "08-directions": (("direction_null.csv", direction_null),),
    "14-sae-train": (("sae_quality.csv", sae_quality),),
}
"""Step id -> (file, function of (step folder, its meta.json) -> the table) for the facts a block
needs that live in a step's meta.json or JSON summary."""


def step_folder(study: Path, step: str, record: dict[str, Any]) -> Path:
    """The folder a study step wrote, from its ``out`` in ``state.json``: as it is when absolute,
    else under the study folder or the first of its parents that holds it (``out`` is relative to
    where the study ran)."""
    out = Path(str(record.get("out", "")))
    study = study.resolve()
    candidates = (
        [out] if out.is_absolute() else [study / out.name, *(p / out for p in study.parents)]
    )
    for folder in candidates:
        if (folder / paths.META_FILE).is_file():
            return folder
    raise InputNotFoundError(
        f"{study / 'state.json'}: step {step} wrote {out}, but no folder with a "
        f"{paths.META_FILE} is at {', '.join(map(str, candidates[:3]))} or higher up"
    )


def export_study_tables(study: Path, dest: Path) -> dict[str, Any]:
    """Copy the summary tables of every step in :data:`STEP_TABLES` from the ``interp study``
    folder ``study`` to ``dest/<step id>/``, write the derived tables and ``provenance.json``;
    returns the provenance record."""
    state_file = study / "state.json"
    if not state_file.is_file():
        raise InputNotFoundError(f"run: {study} has no state.json (not an `interp study` folder)")
    steps = json.loads(state_file.read_text()).get("steps", {})
    missing = [s for s in STEP_TABLES if s not in steps]
    if missing:
        raise InterpError(
            f"{state_file}: step(s) {', '.join(missing)} did not finish (expected every step of "
            f"{', '.join(STEP_TABLES)}); finish the study first"
        )
    record: dict[str, Any] = {
        "study": str(study),
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "steps": {},
    }
    for step, files in STEP_TABLES.items():
        folder = step_folder(study, step, steps[step])
        meta = json.loads((folder / paths.META_FILE).read_text())
        out = dest / step
        out.mkdir(parents=True, exist_ok=True)
        for name in files:
            source = folder / name
            if not source.is_file():
                raise InputNotFoundError(f"step {step}: {folder} has no {name}")
            if source.stat().st_size > MAX_TABLE_BYTES:
                raise InterpError(
                    f"step {step}: {source} is {source.stat().st_size} bytes, over the "
                    f"{MAX_TABLE_BYTES} of a summary table; it is not copied into results/"
                )
            shutil.copyfile(source, out / name)
        derived = DERIVED_TABLES.get(step, ())
        for name, make in derived:
            make(folder, meta).to_csv(out / name, index=False)
        record["steps"][step] = {
            "out": steps[step].get("out"),
            "command": steps[step].get("command"),
            "finished_at": steps[step].get("finished_at"),
            "meta_sha256": steps[step].get("meta_sha256"),
            "git_commit": meta.get("git_commit"),
            "created": meta.get("created"),
            "files": [*files, *(name for name, _ in derived)],
        }
    write_json_atomic(dest / PROVENANCE_FILE, record, overwrite=True)
    return record
