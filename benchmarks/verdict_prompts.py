"""The verdict's prompt mix for benchmarks: no belief, sad, wrong belief, sad + wrong belief."""

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
