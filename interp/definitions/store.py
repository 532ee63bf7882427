"""Find a saved definition direction by label.

``interp directions`` writes one :class:`~interp.directions.Direction` folder per definition and
method inside its run folder (``<artifacts>/directions/<hash>/<label>/``, label ``persona`` or
``persona-pca``). Folders and run folders are expanded by
:func:`interp.directions.find_direction_folders` (the one way to find them); here a direction is
also named by ``<run folder>/<label>`` or by label alone when exactly one run holds it.
"""

from __future__ import annotations

from pathlib import Path

from interp import paths
from interp.config import ConfigError
from interp.directions import Direction, is_direction_folder


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
    runs = root.glob("*") if root.is_dir() else []
    matches = sorted(f / ref for f in runs if is_direction_folder(f / ref))
    if len(matches) == 1:
        return Direction.load(matches[0])
    if not matches:
        raise ConfigError(
            f"direction {ref!r}: not a direction folder, and no run under {root} holds that label"
        )
    listed = ", ".join(str(m.parent) for m in matches)
    raise ConfigError(
        f"direction {ref!r} is in several runs ({listed}); pass the run folder or the full path"
    )
