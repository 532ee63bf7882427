"""The persona direction: warm minus neutral replies to the same requests.

Each reply triple's request is rendered with its warm reply and with its neutral reply (user turn
+ assistant turn, optionally under a system prompt). The model reads both; ``resid_post`` is
averaged over the assistant reply's tokens (the cache's ``mean_assistant`` position, as in
persona vectors) and the direction at each layer is the difference of the warm and neutral means
(:func:`interp.directions.derive`, ``mean_diff``).

This is the one definition used by ``interp directions`` (its ``persona`` definition reads the
rows of :func:`persona_rows` from its own caches), the demo, the SAE's layer choice and the
fallback directions (:mod:`interp.definitions.fallback`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from interp import paths
from interp.artifacts import sha256_json
from interp.cache import CachedActivations, CacheRow, CacheSpec, build_cache, open_cache
from interp.chat import as_messages
from interp.directions import Direction, DirectionError, derive
from interp.hooks.base import Backend
from interp.sites import Site
from interp.warmth.pairs import ReplyTriple

PERSONA_POSITION = "mean_assistant"
PERSONA_TONES = ("warm", "neutral")


def persona_row_id(triple_id: str, tone: str) -> str:
    """The cache row id of one triple's reply in one tone, e.g. ``t012/warm``."""
    return f"{triple_id}/{tone}"


def persona_rows(triples: Sequence[ReplyTriple], system: str | None = None) -> list[CacheRow]:
    """Request + warm reply and request + neutral reply per triple (in that order)."""
    return [
        CacheRow(
            persona_row_id(t.id, tone),
            tuple(as_messages(t.request, system=system, assistant=t.reply(tone))),
            add_generation_prompt=False,
        )
        for t in triples
        for tone in PERSONA_TONES
    ]


def persona_from_cache(
    cache: CachedActivations,
    triples: Sequence[ReplyTriple],
    layers: Iterable[int],
    *,
    site_kind: str = "resid_post",
    method: str = "mean_diff",
) -> Direction:
    """The persona direction from a cache holding :func:`persona_rows` at ``mean_assistant``."""
    index = {rid: i for i, rid in enumerate(cache.row_ids)}
    try:
        warm = torch.tensor([index[persona_row_id(t.id, "warm")] for t in triples])
        neutral = torch.tensor([index[persona_row_id(t.id, "neutral")] for t in triples])
    except KeyError as exc:
        raise DirectionError(f"cache {cache.folder} lacks persona row {exc}") from None
    pos, neg = {}, {}
    for layer in sorted(set(layers)):
        acts = cache.load(Site(layer, site_kind), PERSONA_POSITION)[:, 0].float()  # type: ignore[arg-type]
        pos[layer], neg[layer] = acts[warm], acts[neutral]
    return derive(
        "persona",
        method,
        pos,
        neg,
        site_kind=site_kind,
        position=PERSONA_POSITION,
        sources={"cache": str(cache.folder), "triples": ",".join(t.id for t in triples)},
    )


def persona_direction(
    backend: Backend,
    triples: Sequence[ReplyTriple],
    layers: Iterable[int],
    *,
    batch_size: int = 8,
    system: str | None = None,
    cache_dir: Path | None = None,
) -> Direction:
    """The persona direction read by ``backend`` at ``layers`` (``resid_post``).

    The activations go through the package's cache, in ``cache_dir`` or by default
    ``<artifacts>/cache/persona-<key>`` (the key covers the model, the rows and the spec), so a
    second call reads them back.
    """
    if len(triples) < 2:
        raise DirectionError(
            f"the persona direction needs at least two triples, found {len(triples)}"
        )
    layer_list = sorted(set(layers))
    rows = persona_rows(triples, system)
    spec = CacheSpec(
        sites=tuple(Site(layer, "resid_post") for layer in layer_list),
        positions=(PERSONA_POSITION,),
        batch_size=batch_size,
        shard_rows=batch_size * 8,
    )
    if cache_dir is None:
        key = sha256_json(
            [backend.loaded.provenance(), [r.id for r in rows], system, spec.to_json()]
        )[:12]
        cache_dir = paths.artifact_dir("cache", f"persona-{key}")
    folder = build_cache(backend, rows, spec, cache_dir, show_progress=False)
    return persona_from_cache(open_cache(folder), triples, layer_list)
