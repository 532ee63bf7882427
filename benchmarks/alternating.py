"""Time a baseline and ours in alternating rounds (so load drifts hit both alike)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def best_of_alternating(
    baseline: Callable[[], T], ours: Callable[[], T], rounds: int
) -> tuple[T, T, float, float]:
    """Run ``baseline`` then ``ours``, ``rounds`` times; return the last result of each and the
    best (shortest) wall time of each in seconds."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, found {rounds}")
    times: dict[str, list[float]] = {"base": [], "ours": []}
    results: dict[str, T] = {}
    for _ in range(rounds):
        for name, fn in (("base", baseline), ("ours", ours)):
            t0 = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return results["base"], results["ours"], min(times["base"]), min(times["ours"])
