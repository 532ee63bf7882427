"""The verdict's inputs for benchmarks: its prompt mix (no belief, sad, wrong belief, sad + wrong
belief) and null-like edit sets (random directions shifted at one layer)."""

from __future__ import annotations

from typing import Any

import numpy as np


def verdict_prompt_mix(n: int, seed: int = 0) -> list[Any]:
    """``n`` prompts drawn (seeded) from the four verdict cells of the embedded items, in a
    shuffled order (so batches mix cells and lengths as a run's do)."""
    from interp.data.build import prompt_list

    prompts, _ = prompt_list(
        templates=("no_belief", "incorrect"),
        conditions=("unmodified", "emotion:sad"),
        per_task=max(1, n // 16 + 1),
        seed=seed,
    )
    order = np.random.default_rng(seed).permutation(len(prompts))[:n]
    return [prompts[i] for i in order]


def shifted_random_edits(
    d_model: int, n: int, layer: int, shift: float, seed: int = 0
) -> dict[str, Any]:
    """``n`` edit sets ``null:<i>``, each shifting a seeded random direction at ``resid_post`` of
    ``layer`` by ``shift`` (alternating sign), as the verdict's null arms do."""
    import torch

    from interp.causal.removal import shift_edits
    from interp.directions import Direction

    g = torch.Generator().manual_seed(seed)
    out = {}
    for i in range(n):
        vec = torch.randn(1, d_model, generator=g)
        d = Direction(f"r{i}", "random", "resid_post", "all", (layer,), vec)
        out[f"null:{i}"] = shift_edits(d, layer, (1.0 if i % 2 else -1.0) * shift)
    return out
