"""Train a TopK (or JumpReLU) SAE with sae-lens' own trainer on in-memory token activations.

sae-lens' :class:`~sae_lens.training.sae_trainer.SAETrainer` takes any iterator of activation
batches as its data provider; :class:`ShuffledBatches` is ours: epoch-wise seeded permutations of
the rows, indexed by the number of samples drawn, so a run resumed from a checkpoint continues
with exactly the batches it would have seen. Inputs are scaled to norm sqrt(d_in) during training
(sae-lens' ``expected_average_only_in``) and the factor is folded into the weights at the end,
so the saved SAE reads raw residual activations.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from jaxtyping import Float
from torch import Tensor

log = logging.getLogger(__name__)

Architecture = Literal["topk", "jumprelu"]


@dataclass(frozen=True)
class SaeTrainSpec:
    """Hyperparameters of one SAE (``d_sae`` latents, ``k`` active per token for TopK)."""

    d_sae: int
    k: int = 32
    architecture: Architecture = "topk"
    l0_coefficient: float = 1.0  # JumpReLU only
    lr: float = 4e-4
    batch_size: int = 1024
    n_samples: int = 400_000
    seed: int = 0
    n_checkpoints: int = 3
    norm_batches: int = 20

    def __post_init__(self) -> None:
        if self.d_sae < 1 or self.k < 1 or self.k > self.d_sae:
            raise ValueError(f"need 1 <= k <= d_sae, found k={self.k}, d_sae={self.d_sae}")
        if self.n_samples < self.batch_size:
            raise ValueError(
                f"n_samples ({self.n_samples}) must be at least batch_size ({self.batch_size})"
            )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ShuffledBatches(Iterator[Tensor]):
    """Batches of rows of ``acts`` in seeded epoch-wise random order, starting at sample
    ``start``."""

    def __init__(self, acts: Float[Tensor, "n d"], batch_size: int, seed: int, start: int = 0):
        if acts.shape[0] < batch_size:
            raise ValueError(f"only {acts.shape[0]} activations for batches of {batch_size}")
        self.acts, self.batch_size, self.seed, self.drawn = acts, batch_size, seed, start
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def _order(self, epoch: int) -> Tensor:
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._perm, self._epoch = torch.randperm(self.acts.shape[0], generator=g), epoch
        return self._perm

    def __next__(self) -> Tensor:
        n = self.acts.shape[0]
        per_epoch = n - n % self.batch_size  # whole batches only
        epoch, offset = divmod(self.drawn, per_epoch)
        idx = self._order(epoch)[offset : offset + self.batch_size]
        self.drawn += self.batch_size
        return self.acts[idx]


def _training_sae(d_in: int, spec: SaeTrainSpec, device: str) -> Any:
    from sae_lens import (
        JumpReLUTrainingSAE,
        JumpReLUTrainingSAEConfig,
        TopKTrainingSAE,
        TopKTrainingSAEConfig,
    )

    common: dict[str, Any] = {
        "d_in": d_in,
        "d_sae": spec.d_sae,
        "dtype": "float32",
        "device": device,
        "normalize_activations": "expected_average_only_in",
    }
    if spec.architecture == "topk":
        return TopKTrainingSAE(TopKTrainingSAEConfig(k=spec.k, **common))
    return JumpReLUTrainingSAE(
        JumpReLUTrainingSAEConfig(l0_coefficient=spec.l0_coefficient, **common)
    )


def train_sae(
    acts: Float[Tensor, "n d_in"],
    spec: SaeTrainSpec,
    checkpoint_dir: Path | None = None,
    metadata: dict[str, Any] | None = None,
    device: str | torch.device = "cpu",
) -> tuple[Any, dict[str, Any]]:
    """Train an SAE on ``acts`` through sae-lens' ``SAETrainer``; returns the trained
    *training* SAE (scaling folded in) and a log with steps, final L0 and dead latents.

    The SAE trains on ``device`` (the model's, so a GPU run trains there; fp32 weights); the
    activations stay where they are and each batch moves to ``device``.

    ``checkpoint_dir``: where sae-lens writes ``spec.n_checkpoints`` intermediate checkpoints;
    if it already holds one, training resumes from the latest.
    """
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.training.sae_trainer import SAETrainer

    if acts.ndim != 2 or not torch.isfinite(acts).all():
        raise ValueError(f"acts must be a finite (n, d) tensor, found shape {tuple(acts.shape)}")
    torch.manual_seed(spec.seed)
    sae = _training_sae(acts.shape[1], spec, str(device))
    for key, value in (metadata or {}).items():
        sae.cfg.metadata[key] = value
    cfg = SAETrainerConfig(
        total_training_samples=spec.n_samples,
        train_batch_size_samples=spec.batch_size,
        lr=spec.lr,
        lr_end=spec.lr / 10,
        lr_scheduler_name="cosineannealing",
        lr_warm_up_steps=min(50, spec.n_samples // spec.batch_size // 10),
        device=str(device),
        dead_feature_window=max(50, spec.n_samples // spec.batch_size // 8),
        feature_sampling_window=max(100, spec.n_samples // spec.batch_size // 4),
        n_checkpoints=spec.n_checkpoints if checkpoint_dir is not None else 0,
        checkpoint_path=str(checkpoint_dir) if checkpoint_dir is not None else None,
        logger=LoggingConfig(log_to_wandb=False),
        n_batches_for_norm_estimate=spec.norm_batches,
    )
    data = ShuffledBatches(acts.float(), spec.batch_size, spec.seed)
    trainer = SAETrainer(cfg=cfg, sae=sae, data_provider=data)
    resumed_from = _resume(trainer, checkpoint_dir, data, spec)
    trainer.fit()
    info = {
        "steps": trainer.n_training_steps,
        "samples": trainer.n_training_samples,
        "resumed_from": resumed_from,
        "train_l0": float(sae.cfg.metadata.l0) if sae.cfg.metadata.l0 is not None else None,
        "train_dead_latents": int(sae.cfg.metadata.num_dead_features or 0),
        "epochs": trainer.n_training_samples / acts.shape[0],
    }
    return sae, info


def _resume(
    trainer: Any, checkpoint_dir: Path | None, data: ShuffledBatches, spec: SaeTrainSpec
) -> int | None:
    """Load the latest sae-lens checkpoint in ``checkpoint_dir`` (if any) into ``trainer``."""
    if checkpoint_dir is None or not Path(checkpoint_dir).is_dir():
        return None
    done = sorted(
        (int(p.name), p)
        for p in Path(checkpoint_dir).iterdir()
        if p.name.isdigit() and (p / "trainer_state.pt").is_file()
    )
    if not done:
        return None
    samples, folder = done[-1]
    trainer.sae.load_weights_from_checkpoint(folder)
    trainer.load_trainer_state(folder)
    trainer.checkpoint_thresholds = [
        t for t in trainer.checkpoint_thresholds if t >= trainer.n_training_samples
    ]
    # the norm estimate drew its batches first; training batches follow them
    data.drawn = spec.norm_batches * spec.batch_size + trainer.n_training_samples
    log.info("resuming SAE training from %s (%d samples)", folder, samples)
    return samples


def to_inference(training_sae: Any, folder: Path, device: str | torch.device = "cpu") -> Any:
    """Save the inference form of a trained SAE to ``folder`` (sae-lens files) and load it back
    onto ``device``."""
    from sae_lens import SAE

    training_sae.save_inference_model(str(folder))
    return SAE.load_from_disk(str(folder), device=str(device))
