"""Find saved definition directions by path or by label.

``interp directions`` writes one :class:`~interp.directions.Direction` folder per definition and
method inside its run folder (``<artifacts>/directions/<hash>/<label>/``, label ``persona`` or
``persona-pca``). Later stages (steering, ablation, probes) name a direction by its folder, by
``<run folder>/<label>``, or by label alone when exactly one run holds it.
"""

from __future__ import annotations

from pathlib import Path

from interp import paths
from interp.config import ConfigError
from interp.directions import Direction

VECTORS_FILE = "vectors.safetensors"


def is_direction_folder(folder: Path) -> bool:
    return (folder / VECTORS_FILE).is_file() and (folder / paths.META_FILE).is_file()


def run_directions(run: Path) -> list[Direction]:
    """Every Direction saved in one ``interp directions`` run folder, sorted by label."""
    run = Path(run)
    if not run.is_dir():
        raise ConfigError(f"directions: {run} is not a folder")
    found = [Direction.load(f) for f in sorted(run.iterdir()) if f.is_dir() and is_direction_folder(f)]
    if not found:
        raise ConfigError(f"directions: {run} holds no direction folders (expected <label>/{VECTORS_FILE})")
    return found


def resolve_direction(ref: str, run: Path | None = None) -> Direction:
    """A direction by folder path, or by label inside ``run`` (or inside the only directions run
    under ``<artifacts>/directions`` that holds that label)."""
    p = Path(ref).expanduser()
    if is_direction_folder(p):
        return Direction.load(p)
    if run is not None:
        if is_direction_folder(Path(run) / ref):
            return Direction.load(Path(run) / ref)
        raise ConfigError(f"direction {ref!r}: no such folder in {run}")
    root = paths.artifacts_root() / "directions"
    matches = sorted(f / ref for f in root.glob("*") if is_direction_folder(f / ref)) if root.is_dir() else []
    if len(matches) == 1:
        return Direction.load(matches[0])
    if not matches:
        raise ConfigError(f"direction {ref!r}: not a direction folder, and no run under {root} holds that label")
    listed = ", ".join(str(m.parent) for m in matches)
    raise ConfigError(f"direction {ref!r} is in several runs ({listed}); pass the run folder or the full path")
