"""Quick warmth and sycophancy directions for the causal commands when no ``interp directions``
run is named; the commands call these only behind an explicit ``--fallback-directions`` flag and
say so (mean difference at ``resid_post``, every requested layer).

- ``persona``: :func:`interp.persona.persona_direction` (warm minus neutral replies to the same
  requests, mean over the reply's tokens);
- ``sycophancy``: prompts with a stated wrong belief minus the same prompts without it, at the
  last prompt token (where the answer is decided), paired by item and condition.

These are the simplest faithful definitions; ``interp directions`` derives the study's full set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from interp.cache import CacheRow, CacheSpec, compute_rows, key_of
from interp.data.prompt_sets import Prompt
from interp.directions import Direction, DirectionError, derive
from interp.evaluate import conversation
from interp.hooks.base import Backend
from interp.persona import persona_direction
from interp.sites import Site
from interp.warmth.pairs import ReplyTriple

FALLBACK_NOTE = "fallback directions (interp.definitions.fallback), not an `interp directions` run"


def fallback_persona(
    backend: Backend,
    triples: Sequence[ReplyTriple],
    layers: Iterable[int],
    *,
    batch_size: int = 8,
    cache_dir: Path | None = None,
) -> Direction:
    """The persona direction (:func:`interp.persona.persona_direction`), marked as a fallback."""
    d = persona_direction(backend, triples, layers, batch_size=batch_size, cache_dir=cache_dir)
    d.meta["definition"] = "fallback: warm minus neutral replies, mean over reply tokens"
    return d


def fallback_sycophancy(
    backend: Backend, prompts: Sequence[Prompt], layers: Iterable[int], *, batch_size: int = 8
) -> Direction:
    """Wrong-belief minus no-belief prompts (same item and condition), last prompt token."""
    base = {(p.item_id, p.condition): p for p in prompts if p.template == "no_belief"}
    pairs = [
        (p, base[(p.item_id, p.condition)])
        for p in prompts
        if p.template == "incorrect" and (p.item_id, p.condition) in base
    ]
    if len(pairs) < 2:
        raise DirectionError(
            "the sycophancy direction needs at least two incorrect/no_belief prompt pairs"
        )
    layer_list = sorted(set(layers))
    sites = tuple(Site(layer, "resid_post") for layer in layer_list)
    spec = CacheSpec(sites=sites, positions=("last",), batch_size=batch_size, shard_rows=batch_size)
    acts = {}
    for side, pick in (("belief", 0), ("none", 1)):
        rows = [CacheRow(f"{i}", conversation(pair[pick])) for i, pair in enumerate(pairs)]
        got = compute_rows(backend, rows, spec)
        acts[side] = {s.layer: got[key_of(s, "last")][:, 0].float() for s in sites}
    d = derive(
        "sycophancy",
        "mean_diff",
        acts["belief"],
        acts["none"],
        position="last",
        sources={"prompts": f"{len(pairs)} incorrect/no_belief pairs"},
    )
    d.meta["definition"] = "fallback: wrong belief minus no belief, last prompt token"
    return d


def fallback_directions(
    backend: Backend,
    triples: Sequence[ReplyTriple],
    prompts: Sequence[Prompt],
    layers: Iterable[int],
    *,
    batch_size: int = 8,
) -> list[Direction]:
    """``[persona, sycophancy]`` fallback directions at ``layers``."""
    layer_list = sorted(set(layers))
    return [
        fallback_persona(backend, triples, layer_list, batch_size=batch_size),
        fallback_sycophancy(backend, prompts, layer_list, batch_size=batch_size),
    ]
