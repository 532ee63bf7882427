"""The fine-tune direction along training: one direction per saved checkpoint epoch.

For each checkpoint the fine-tune direction is the mean difference between the activations of
base+adapter(epoch) and of the base model on identical prompts. Per epoch and layer the table
holds ``cosine_to_final`` (that direction vs the final checkpoint's) and ``shift``: the mean
projection of the per-prompt difference (adapter(epoch) minus base) on the final unit direction,
divided by the base model's mean residual norm at that layer. If the warm shift grows with
training, ``shift`` rises with the epochs; joined with the fine-tune run's warmth per epoch it
says whether the shift tracks warmth.

Checkpoints are PEFT adapter folders with a meta.json holding their ``epoch``, found under
``<run>/checkpoints/epoch-<x>/`` (``interp finetune``), or listed by hand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from jaxtyping import Float
from torch import Tensor

from interp import paths
from interp.config import ConfigError
from interp.directions import cosine

TRAJECTORY_COLUMNS = ["epoch", "layer", "cosine_to_final", "shift"]
WARMTH_FILE = "warmth_by_epoch.csv"


@dataclass(frozen=True)
class Checkpoint:
    """One saved adapter and the training epoch it was saved at."""

    epoch: float
    adapter: Path


def _epoch_of(folder: Path) -> float:
    meta_file = folder / paths.META_FILE
    if not meta_file.is_file():
        raise ConfigError(
            f"checkpoint {folder} has no {paths.META_FILE}; its epoch is unknown (pass PATH=EPOCH)"
        )
    try:
        meta = json.loads(meta_file.read_text())
        epoch = float(meta["epoch"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"{meta_file}: expected a numeric 'epoch' field ({type(exc).__name__}: {exc})"
        ) from None
    if not math.isfinite(epoch) or epoch < 0:
        raise ConfigError(f"{meta_file}: epoch must be a finite number >= 0, found {epoch}")
    return epoch


def _check_adapter(folder: Path) -> Path:
    if not (folder / "adapter_config.json").is_file():
        raise ConfigError(
            f"checkpoint {folder} has no adapter_config.json: not a PEFT adapter folder"
        )
    return folder


def find_checkpoints(run: Path) -> list[Checkpoint]:
    """Every ``<run>/checkpoints/epoch-*/`` adapter (or ``<run>/epoch-*/``), sorted by epoch."""
    run = Path(run)
    base = run / "checkpoints" if (run / "checkpoints").is_dir() else run
    folders = sorted(f for f in base.glob("epoch-*") if f.is_dir())
    if not folders:
        raise ConfigError(f"no checkpoint folders (epoch-*) under {base}")
    return _sorted_unique([Checkpoint(_epoch_of(f), _check_adapter(f)) for f in folders])


def parse_checkpoints(specs: Sequence[str]) -> list[Checkpoint]:
    """Checkpoints from ``PATH`` (epoch from its meta.json) or ``PATH=EPOCH`` strings."""
    out = []
    for spec in specs:
        path, sep, epoch = spec.rpartition("=") if "=" in spec else (spec, "", "")
        folder = _check_adapter(Path(path).expanduser())
        if sep:
            try:
                value = float(epoch)
            except ValueError:
                raise ConfigError(f"adapter {spec!r}: epoch {epoch!r} is not a number") from None
        else:
            value = _epoch_of(folder)
        out.append(Checkpoint(value, folder))
    return _sorted_unique(out)


def _sorted_unique(checkpoints: list[Checkpoint]) -> list[Checkpoint]:
    epochs = [c.epoch for c in checkpoints]
    if len(set(epochs)) != len(epochs):
        raise ConfigError(f"two checkpoints share an epoch: {sorted(epochs)}")
    return sorted(checkpoints, key=lambda c: c.epoch)


def trajectory(
    base: Mapping[int, Float[Tensor, "n d"]],
    by_epoch: Mapping[float, Mapping[int, Float[Tensor, "n d"]]],
    final_epoch: float | None = None,
) -> pd.DataFrame:
    """Tidy ``epoch, layer, cosine_to_final, shift`` from base and per-epoch activations of the
    same rows (row i is the same prompt everywhere). ``final_epoch`` defaults to the last.
    An epoch whose activations equal the base's (epoch 0) gets shift 0 and a NaN cosine."""
    if not by_epoch:
        raise ConfigError("no checkpoints to compare")
    final = max(by_epoch) if final_epoch is None else final_epoch
    if final not in by_epoch:
        raise ConfigError(f"final epoch {final} is not among the checkpoints {sorted(by_epoch)}")
    rows = []
    for layer in sorted(base):
        b = base[layer].double()
        final_dir = (by_epoch[final][layer].double() - b).mean(0)
        norm = final_dir.norm()
        unit = final_dir / norm if norm > 0 else final_dir
        scale = b.norm(dim=-1).mean()
        for epoch in sorted(by_epoch):
            acts = by_epoch[epoch][layer].double()
            if acts.shape != b.shape:
                raise ConfigError(
                    f"epoch {epoch}, layer {layer}: {tuple(acts.shape)} rows differ from the "
                    f"base's {tuple(b.shape)}"
                )
            diff = acts - b
            mean = diff.mean(0)
            rows.append(
                {
                    "epoch": epoch,
                    "layer": layer,
                    "cosine_to_final": cosine(mean, final_dir)
                    if mean.norm() > 0 and norm > 0
                    else float("nan"),
                    "shift": float((diff @ unit).mean() / scale),
                }
            )
    return pd.DataFrame(rows, columns=TRAJECTORY_COLUMNS)


def read_warmth(path: Path) -> pd.DataFrame:
    """A fine-tune run's warmth per epoch as one row per epoch and one column per instrument.

    Reads the tidy form ``interp finetune`` writes (``epoch, instrument, mean, ...``; pivoted to
    one column per instrument) or a wide table (``epoch`` plus numeric warmth columns)."""
    df = pd.read_csv(path)
    if "epoch" not in df.columns:
        raise ConfigError(f"{path}: expected an 'epoch' column, found {list(df.columns)}")
    if {"instrument", "mean"} <= set(df.columns):
        wide = df.pivot_table(index="epoch", columns="instrument", values="mean", aggfunc="mean")
        wide.columns = [str(c) for c in wide.columns]
        return wide.reset_index()
    numeric = [c for c in df.columns if c != "epoch" and pd.api.types.is_numeric_dtype(df[c])]
    if not numeric:
        raise ConfigError(
            f"{path}: no numeric warmth column besides 'epoch' (found {list(df.columns)})"
        )
    return df[["epoch", *numeric]].groupby("epoch", as_index=False).mean()


def warmth_correlation(table: pd.DataFrame, warmth: pd.DataFrame) -> pd.DataFrame:
    """Per layer and warmth column: Pearson r between ``shift`` and warmth over shared epochs.

    Columns: layer, measure, n_epochs, r (NaN with fewer than three epochs or no variation)."""
    joined = table.merge(warmth, on="epoch", how="inner")
    rows = []
    for measure in [c for c in warmth.columns if c != "epoch"]:
        for layer, part in joined.groupby("layer", sort=True):
            x, y = part["shift"].to_numpy(float), part[measure].to_numpy(float)
            ok = np.isfinite(x) & np.isfinite(y)
            r = (
                float(np.corrcoef(x[ok], y[ok])[0, 1])
                if ok.sum() >= 3 and x[ok].std() > 0 and y[ok].std() > 0
                else float("nan")
            )
            rows.append({"layer": layer, "measure": measure, "n_epochs": int(ok.sum()), "r": r})
    return pd.DataFrame(rows, columns=["layer", "measure", "n_epochs", "r"])
