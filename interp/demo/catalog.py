"""The directions the demo offers: those given by path, those the newest study wrote, those of
``interp directions`` runs, or a persona direction derived at start-up when there are none.

Where directions are found (:func:`direction_runs`, in this order):

- ``bash scripts/study.sh`` / ``interp study`` writes its directions step into
  ``<artifacts>/study/<preset>/08-directions-<hash>/`` (one Direction folder per definition,
  ``meta.json`` once the step finished); the newest finished one is offered first, its
  ``finetune``, ``persona`` and ``sycophancy`` directions ahead of the others;
- ``interp directions`` writes ``<artifacts>/directions/<hash>/<label>/``; runs newest first.

Run folders are expanded by :func:`interp.directions.find_direction_folders`. Every direction
whose vectors fit the loaded model is listed; a name that repeats in another run gets that run's
folder name as a suffix. With no direction at all, :func:`demo_persona_direction` derives the
persona direction (:func:`interp.persona.persona_direction`) from the shipped reply triples and
saves it under ``<artifacts>/demo/`` so the next start reads it back in well under a second.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from interp import paths
from interp.artifacts import ArtifactExistsError, sha256_json
from interp.config import ConfigError
from interp.directions import Direction, find_direction_folders, is_direction_folder
from interp.errors import InterpError
from interp.hooks.base import Backend
from interp.persona import persona_direction
from interp.warmth.pairs import QUERY_TYPES, ReplyTriple, load_split

log = logging.getLogger(__name__)

# the study's directions step (interp/study/presets.py: Step "08-directions"), in its hashed folder
STUDY_DIRECTIONS_GLOB = "study/*/08-directions-*"
# the study's directions the demo offers first, in this order
STUDY_FIRST = ("finetune", "persona", "sycophancy")


@dataclass(frozen=True)
class CatalogEntry:
    """One direction on offer: the name the page shows, the direction and where it came from."""

    key: str
    direction: Direction
    source: str


def newest_study_directions(artifacts: Path) -> Path | None:
    """The newest finished study directions step folder under ``artifacts`` (None if none)."""
    steps = [
        p for p in Path(artifacts).glob(STUDY_DIRECTIONS_GLOB) if (p / paths.META_FILE).is_file()
    ]
    if not steps:
        return None
    return max(steps, key=lambda p: ((p / paths.META_FILE).stat().st_mtime, str(p)))


def direction_runs(artifacts: Path) -> list[Path]:
    """Run folders whose directions the demo offers, in order: the newest finished study's
    directions step, then the ``interp directions`` runs under ``<artifacts>/directions``,
    newest first."""
    runs: list[Path] = []
    study = newest_study_directions(artifacts)
    if study is not None:
        runs.append(study)
    root = Path(artifacts) / "directions"
    if root.is_dir():
        found = [
            r
            for r in root.iterdir()
            if r.is_dir() and any(is_direction_folder(s) for s in r.iterdir())
        ]
        runs += sorted(found, key=lambda r: (r.stat().st_mtime, r.name), reverse=True)
    return runs


def _study_order(folder: Path) -> tuple[int, str]:
    return (
        STUDY_FIRST.index(folder.name) if folder.name in STUDY_FIRST else len(STUDY_FIRST),
        folder.name,
    )


def _fits(direction: Direction, d_model: int, n_layers: int) -> str | None:
    """Why the direction does not fit the model (None when it does)."""
    if direction.vectors.shape[1] != d_model:
        return f"d_model {direction.vectors.shape[1]}, model has {d_model}"
    if max(direction.layers) >= n_layers:
        return f"layer {max(direction.layers)}, model has {n_layers} layers"
    if direction.site_kind != "resid_post":
        return f"site kind {direction.site_kind} (the demo steers resid_post)"
    return None


def build_catalog(
    explicit: Iterable[Path], runs: Sequence[Path], d_model: int, n_layers: int
) -> list[CatalogEntry]:
    """Explicit folders first (Direction or run folders; a misfit is an error), then the members
    of ``runs`` (see :func:`direction_runs`; a misfit or unreadable folder is skipped with a log
    line); keys are unique."""
    entries: list[CatalogEntry] = []
    keys: set[str] = set()

    def add(direction: Direction, folder: Path) -> None:
        key = f"{direction.name}-{direction.method}"
        if key in keys:
            key = f"{key}@{folder.parent.name}"
        if key in keys:
            return
        keys.add(key)
        entries.append(CatalogEntry(key, direction, str(folder)))

    try:
        for folder in find_direction_folders(list(explicit)):
            direction = Direction.load(folder)
            problem = _fits(direction, d_model, n_layers)
            if problem:
                raise ConfigError(f"direction: {folder} does not fit the model ({problem})")
            add(direction, folder)
    except ConfigError:
        raise
    except InterpError as exc:
        raise ConfigError(f"direction: {exc}") from None
    for run in runs:
        try:
            folders = sorted(find_direction_folders([run]), key=_study_order)
        except InterpError as exc:
            log.warning("skipping direction run %s: %s", run, exc)
            continue
        for folder in folders:
            try:
                direction = Direction.load(folder)
            except InterpError as exc:
                log.warning("skipping direction folder %s: %s", folder, exc)
                continue
            problem = _fits(direction, d_model, n_layers)
            if problem:
                log.info("skipping direction %s: %s", folder, problem)
                continue
            add(direction, folder)
    return entries


def pick_triples(triples: Sequence[ReplyTriple], n: int) -> list[ReplyTriple]:
    """``n`` triples spread over the query types (round robin in the split's id order)."""
    by_type = {q: [t for t in triples if t.query_type == q] for q in QUERY_TYPES}
    out: list[ReplyTriple] = []
    depth = 0
    while len(out) < n and any(depth < len(v) for v in by_type.values()):
        out.extend(
            by_type[q][depth] for q in QUERY_TYPES if depth < len(by_type[q]) and len(out) < n
        )
        depth += 1
    return out


def persona_entry(backend: Backend, n_triples: int = 12, batch_size: int = 8) -> CatalogEntry:
    """The persona direction as a catalog entry (see :func:`demo_persona_direction`)."""
    direction, folder = demo_persona_direction(backend, n_triples, batch_size)
    return CatalogEntry(f"{direction.name}-{direction.method}", direction, str(folder))


def demo_persona_direction(
    backend: Backend, n_triples: int = 12, batch_size: int = 8
) -> tuple[Direction, Path]:
    """The persona direction (:func:`interp.persona.persona_direction`) at every layer over
    ``n_triples`` training triples spread over the query types.

    Saved under ``<artifacts>/demo/persona-<key>`` (the key covers the model, the triples and
    the method), its cache under ``<artifacts>/demo/persona-cache-<key>``; a second call reads it
    back. Returns the direction and its folder.
    """
    if n_triples < 2:
        raise ConfigError(f"persona_triples must be >= 2, found {n_triples}")
    triples = pick_triples(load_split().train, n_triples)
    model = backend.loaded.provenance()
    key = sha256_json(
        {"model": model, "triples": [t.id for t in triples], "method": "mean_diff", "v": 2}
    )[:12]
    folder = paths.artifact_dir("demo", f"persona-{key}")
    if is_direction_folder(folder):
        return Direction.load(folder), folder
    direction = persona_direction(
        backend,
        triples,
        range(backend.n_layers),
        batch_size=batch_size,
        cache_dir=paths.artifact_dir("demo", f"persona-cache-{key}"),
    )
    direction.meta.update(derived_by="interp demo (no study direction found)", model=model)
    try:
        direction.save(folder)
    except ArtifactExistsError:  # another demo process finished first
        return Direction.load(folder), folder
    return direction, folder
