"""Where the warmth directions are strongest: relative norm per layer, and a persona direction
derived from the shipped reply triples when no ``interp directions`` output is given."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from interp import paths
from interp.artifacts import sha256_json
from interp.cache import CacheRow, CacheSpec, build_cache, open_cache
from interp.chat import Message
from interp.directions import Direction, derive, direction_folders
from interp.hooks.base import Backend
from interp.sae.activations import TextRow, encode_row
from interp.sites import Site
from interp.warmth.pairs import ReplyTriple


def persona_direction(backend: Backend, triples: Sequence[ReplyTriple], *, batch_size: int = 8) -> Direction:
    """Persona direction at every layer: mean over assistant tokens of the warm reply minus the
    neutral reply to the same request (read by ``backend``), through the package's cache."""
    rows = [CacheRow(f"{t.id}:{tone}", (Message("user", t.request), Message("assistant", t.reply(tone))), add_generation_prompt=False)
            for t in triples for tone in ("warm", "neutral")]
    sites = tuple(Site(layer, "resid_post") for layer in range(backend.n_layers))
    spec = CacheSpec(sites=sites, positions=("mean_assistant",), batch_size=batch_size, shard_rows=batch_size * 8)
    key = sha256_json([backend.loaded.provenance(), [r.id for r in rows], spec.to_json()])[:12]
    folder = build_cache(backend, rows, spec, paths.artifact_dir("cache", f"sae-persona-{key}"), show_progress=False)
    cache = open_cache(folder)
    ids = cache.row_ids
    warm = torch.tensor([i.endswith(":warm") for i in ids])
    pos, neg = {}, {}
    for site in sites:
        x = cache.load(site, "mean_assistant")[:, 0]
        pos[site.layer], neg[site.layer] = x[warm], x[~warm]
    return derive("persona", "mean_diff", pos, neg, position="mean_assistant", sources={"cache": str(folder)})


@torch.no_grad()
def residual_norms(backend: Backend, rows: Sequence[TextRow], *, max_tokens: int = 256) -> dict[int, float]:
    """Mean L2 norm of ``resid_post`` over the kept tokens of ``rows``, per layer."""
    tok = backend.loaded.tokenizer
    sums: dict[int, float] = {layer: 0.0 for layer in range(backend.n_layers)}
    count = 0
    for row in rows:
        ids, keep = encode_row(tok, row, max_tokens)
        sites = {Site(layer, "resid_post"): (lambda x, k=keep: x[0, k:].norm(dim=-1).sum()) for layer in range(backend.n_layers)}
        with backend.hooked(read=sites) as rec:
            backend.forward(torch.tensor([ids], device=backend.loaded.device), None)
        for site in sites:
            sums[site.layer] += float(rec[site])
        count += len(ids) - keep
    return {layer: s / max(count, 1) for layer, s in sums.items()}


def strongest_layer(directions: Sequence[Direction], norms: dict[int, float], *, skip_last: bool = True) -> tuple[int, dict[int, float]]:
    """The layer where the directions' mean relative norm (‖v_L‖ / mean residual norm at L) is
    largest, and that mean per layer. The last layer is skipped by default (its ``resid_post``
    feeds only the final norm and unembedding)."""
    if not directions:
        raise ValueError("no directions to choose a layer from")
    last = max(norms)
    layers = sorted(set.intersection(*(set(d.layers) for d in directions)) & set(norms))
    if skip_last and len(layers) > 1:
        layers = [layer for layer in layers if layer != last]
    if not layers:
        raise ValueError("the directions share no layer with the model")
    rel = {layer: float(torch.stack([d.at(layer).norm() for d in directions]).mean()) / norms[layer] for layer in layers}
    return max(rel, key=lambda layer: rel[layer]), rel


def load_directions(folders: Sequence[str | Path]) -> list[Direction]:
    """Direction folders (``Direction.save`` output); a folder of such folders is expanded."""
    return [Direction.load(p) for p in direction_folders(folders)]


def is_sycophancy(direction: Direction) -> bool:
    return direction.name.startswith("sycophancy")


def warmth_directions(directions: Sequence[Direction]) -> list[Direction]:
    """The directions that are not sycophancy directions."""
    return [d for d in directions if not is_sycophancy(d)]
