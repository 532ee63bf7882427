"""The directions the demo offers: those a study run wrote, those given by path, or a persona
direction derived at start-up when there are none.

``interp directions`` writes ``<artifacts>/directions/<hash>/<name>-<method>/`` (a
:class:`~interp.directions.Direction` folder). The demo lists every such folder whose vectors fit
the loaded model, newest run first; a name that repeats in an older run gets that run's hash as a
suffix. With no direction at all, :func:`persona_direction` reads the shipped warm and neutral
reply triples with the loaded model (mean over the assistant's tokens at every layer's
``resid_post``) and takes the difference of means; the activations and the direction are cached
under ``<artifacts>/demo/`` so the next start reads them back in well under a second.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from interp import paths
from interp.artifacts import ArtifactExistsError, sha256_json
from interp.cache import CacheRow, CacheSpec, build_cache, open_cache
from interp.chat import Message
from interp.config import ConfigError
from interp.directions import Direction, DirectionError, derive
from interp.hooks.base import Backend
from interp.sites import Site
from interp.warmth.pairs import QUERY_TYPES, ReplyTriple, load_split

log = logging.getLogger(__name__)

VECTORS_FILE = "vectors.safetensors"


@dataclass(frozen=True)
class CatalogEntry:
    """One direction on offer: the name the page shows, the direction and where it came from."""

    key: str
    direction: Direction
    source: str


def direction_folders(root: Path) -> list[Path]:
    """Direction folders under ``root`` (``<root>/<run>/<name>/``), newest run first."""
    if not root.is_dir():
        return []
    found = [meta.parent for meta in root.glob(f"*/*/{paths.META_FILE}") if (meta.parent / VECTORS_FILE).is_file()]
    return sorted(found, key=lambda f: (f.parent.stat().st_mtime, f.name), reverse=True)


def load_direction_folder(folder: Path) -> Direction:
    """A direction folder, with errors that name the folder."""
    folder = Path(folder)
    if not (folder / paths.META_FILE).is_file() or not (folder / VECTORS_FILE).is_file():
        raise ConfigError(f"direction: {folder} is not a direction folder (expected {paths.META_FILE} and {VECTORS_FILE})")
    try:
        return Direction.load(folder)
    except (KeyError, ValueError, OSError) as exc:
        raise ConfigError(f"direction: cannot read {folder}: {exc}") from None


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
    explicit: Iterable[Path], root: Path | None, d_model: int, n_layers: int
) -> list[CatalogEntry]:
    """Explicit folders first (a misfit is an error), then the study's folders under ``root``
    (a misfit is skipped with a log line), newest first; keys are unique."""
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

    for folder in explicit:
        direction = load_direction_folder(folder)
        problem = _fits(direction, d_model, n_layers)
        if problem:
            raise ConfigError(f"direction: {folder} does not fit the model ({problem})")
        add(direction, Path(folder))
    for folder in direction_folders(root) if root is not None else []:
        try:
            direction = Direction.load(folder)
        except (KeyError, ValueError, OSError, DirectionError) as exc:
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
        out.extend(by_type[q][depth] for q in QUERY_TYPES if depth < len(by_type[q]) and len(out) < n)
        depth += 1
    return out


def persona_rows(triples: Sequence[ReplyTriple]) -> list[CacheRow]:
    """Warm then neutral conversations (request + reply) for the cache, warm rows first."""
    rows = []
    for tone in ("warm", "neutral"):
        for t in triples:
            conv = (Message("user", t.request), Message("assistant", t.reply(tone)))
            rows.append(CacheRow(f"{t.id}:{tone}", conv, add_generation_prompt=False))
    return rows


def persona_entry(backend: Backend, n_triples: int = 12, batch_size: int = 8) -> CatalogEntry:
    """The persona direction as a catalog entry (see :func:`persona_direction`)."""
    direction, folder = persona_direction(backend, n_triples, batch_size)
    return CatalogEntry(f"{direction.name}-{direction.method}", direction, str(folder))


def persona_direction(backend: Backend, n_triples: int = 12, batch_size: int = 8) -> tuple[Direction, Path]:
    """Warm minus neutral replies read by the loaded model: mean over the assistant's tokens at
    every layer's ``resid_post``, difference of means over ``n_triples`` training triples.

    Cached under ``<artifacts>/demo/persona-<key>`` (the key covers the model, the triples and
    the method); a second call reads it back. Returns the direction and its folder.
    """
    if n_triples < 2:
        raise ConfigError(f"persona_triples must be >= 2, found {n_triples}")
    triples = pick_triples(load_split().train, n_triples)
    rows = persona_rows(triples)
    model = backend.loaded.provenance()
    key = sha256_json({"model": model, "rows": [r.id for r in rows], "method": "mean_diff", "v": 1})[:12]
    folder = paths.artifact_dir("demo", f"persona-{key}")
    if (folder / VECTORS_FILE).is_file():
        return Direction.load(folder), folder
    layers = range(backend.n_layers)
    spec = CacheSpec(sites=tuple(Site(layer, "resid_post") for layer in layers), positions=("mean_assistant",),
                     batch_size=batch_size, shard_rows=batch_size * 16)
    cache_dir = build_cache(backend, rows, spec, paths.artifact_dir("demo", f"persona-cache-{key}"), show_progress=False)
    cache = open_cache(cache_dir)
    n = len(triples)
    pos, neg = {}, {}
    for layer in layers:
        acts = cache.load(Site(layer, "resid_post"), "mean_assistant")[:, 0].float()
        pos[layer], neg[layer] = acts[:n], acts[n:]
    direction = derive("persona", "mean_diff", pos, neg, position="mean_assistant",
                       sources={"cache": str(cache_dir), "triples": ",".join(t.id for t in triples)})
    direction.meta.update(derived_by="interp demo (no study direction found)", model=model)
    try:
        direction.save(folder)
    except ArtifactExistsError:  # another demo process finished first
        return Direction.load(folder), folder
    return direction, folder
