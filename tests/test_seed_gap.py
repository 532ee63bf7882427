"""``interp seed-gap`` refuses mismatched adapters and seeds before loading anything."""

from __future__ import annotations

import pytest

from interp.commands.seed_gap import SeedGapConfig
from interp.config import ConfigError


def test_one_adapter_per_seed():
    with pytest.raises(ConfigError, match="one warm"):
        SeedGapConfig(warm=("a", "b"), cold=("c", "d", "e"), seeds=(0, 1, 2))
    with pytest.raises(ConfigError, match="seeds must differ"):
        SeedGapConfig(warm=("a", "b"), cold=(), seeds=(1, 1))
    assert SeedGapConfig(warm=("a",), cold=(), seeds=(3,)).seeds == (3,)


def _row(contrast: str, condition: str, seed: int, gap: float, lo: float, hi: float):
    return {
        "split": "evaluation", "contrast": contrast, "condition": condition, "task": "all",
        "measure": "error", "n_items": 40, "gap": gap, "gap_low": lo, "gap_high": hi,
        "q_value": 0.04, "seed": seed,
    }  # fmt: skip


def test_the_seed_sentences_cover_warm_and_cold_and_count_ci_signs():
    import pandas as pd

    from interp.causal.verdict_text import seed_sentences

    table = pd.DataFrame(
        [
            _row("warm - original", "neutral", 0, 0.10, 0.02, 0.18),
            _row("warm - original", "neutral", 1, 0.04, -0.02, 0.10),
            _row("warm - original", "wrong belief", 0, -0.08, -0.12, -0.03),
            _row("cold - original", "neutral", 0, 0.01, -0.05, 0.07),
            {**_row("warm - original", "neutral", 0, 0.9, 0.8, 1.0), "task": "medical"},
        ]
    )
    text = seed_sentences(table)
    warm, cold = text.split("\n\n")
    assert warm.startswith("Warm minus original") and cold.startswith("Cold minus original")
    assert "neutral (chose the wrong answer, n = 40 items): seed 0 +10.0 pp [+2.0, +18.0]" in warm
    assert "seed 1 +4.0 pp" in warm and "CI above zero in 1 of 2 seeds, below zero in 0." in warm
    assert "wrong belief (chose the user's wrong answer" in warm and "below zero in 1." in warm
    assert "+90.0" not in text  # a task's row is not the pooled one
    assert "neutral (chose the wrong answer, n = 40 items): seed 0 +1.0 pp" in cold
