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
