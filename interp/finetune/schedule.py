"""Which examples each optimizer step sees, and at which steps checkpoints fall.

Training reads a stream of example indices: epoch ``k`` of the stream is a permutation of the
``n`` examples drawn from ``numpy.random.default_rng([seed, k])``. Optimizer step ``s`` takes
stream positions ``[s * batch, (s + 1) * batch)``, so the data order is a pure function of
(seed, n, batch, step): a resumed run needs only the step number to see the same batches.

A run of ``epochs`` epochs has ``max(1, round_half_up(epochs * n / batch))`` steps; the checkpoint
of epoch ``e`` falls after step ``max(1, round_half_up(e * n / batch))`` (capped at the last step);
its exact epoch is ``step * batch / n``, recorded beside the nominal one.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def checkpoint_name(epoch: float) -> str:
    """Folder name of the checkpoint at nominal ``epoch``: ``epoch-0.5``, ``epoch-1.0``, ..."""
    return f"epoch-{float(epoch)!r}"


@dataclass(frozen=True)
class Schedule:
    """Steps, data order and checkpoint steps of one run."""

    n_examples: int
    batch: int
    epochs: float
    checkpoint_epochs: tuple[float, ...]
    seed: int

    def __post_init__(self) -> None:
        if self.n_examples < 1 or self.batch < 1 or self.epochs <= 0:
            raise ValueError(
                f"need n_examples >= 1, batch >= 1, epochs > 0; found {self.n_examples}, "
                f"{self.batch}, {self.epochs}"
            )

    @property
    def total_steps(self) -> int:
        return self._round_steps(self.epochs)

    def _round_steps(self, epoch: float) -> int:
        return max(1, math.floor(epoch * self.n_examples / self.batch + 0.5))

    def step_of_epoch(self, epoch: float) -> int:
        """The optimizer step after which the checkpoint of ``epoch`` is written (1-based)."""
        return min(self.total_steps, self._round_steps(epoch))

    def checkpoints(self) -> dict[int, float]:
        """Step -> nominal epoch for every checkpoint (the final epoch always included).

        Epochs beyond the run are dropped; two epochs that fall on one step keep the larger.
        """
        wanted = sorted({*(e for e in self.checkpoint_epochs if 0 < e <= self.epochs), self.epochs})
        return {self.step_of_epoch(e): float(e) for e in wanted}

    def exact_epoch(self, step: int) -> float:
        """Examples seen after ``step`` steps, in epochs."""
        return step * self.batch / self.n_examples

    @functools.lru_cache(maxsize=64)  # noqa: B019 - frozen and hashable; a few epochs at most
    def _permutation(self, epoch_index: int) -> tuple[int, ...]:
        rng = np.random.default_rng([self.seed, epoch_index])
        return tuple(int(i) for i in rng.permutation(self.n_examples))

    def batch_indices(self, step: int) -> list[int]:
        """Example indices of optimizer step ``step`` (0-based), ``batch`` of them."""
        if not 0 <= step < self.total_steps:
            raise IndexError(f"step {step} outside 0..{self.total_steps - 1}")
        out = []
        for pos in range(step * self.batch, (step + 1) * self.batch):
            perm = self._permutation(pos // self.n_examples)
            out.append(perm[pos % self.n_examples])
        return out


def micro_batches(items: Sequence[int], lengths: Sequence[int], size: int) -> list[list[int]]:
    """Split one optimizer step's example indices into micro-batches of at most ``size``,
    grouping similar lengths (sorted by length, stable) so that little padding is computed.
    ``lengths[i]`` is the token count of example ``i``."""
    ordered = sorted(items, key=lambda i: lengths[i])
    return [ordered[k : k + size] for k in range(0, len(ordered), size)]
