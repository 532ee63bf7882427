"""The ``paper`` preset's plan without loading anything: sizes and estimated GPU hours.

The estimate is arithmetic on the paper's recipe (STUDY.md) and the models' real shapes
(:data:`interp.tiny_models.REAL_SHAPES`); every assumption is a named argument and is printed
with the plan. Training FLOPs use 6 x parameters x tokens (an upper bound for LoRA, whose
frozen weights need no weight gradients); inference uses 2 x parameters x tokens. Sustained
utilisation (MFU) turns FLOPs into hours on an H100 (989 TFLOP/s dense bf16).

The utilisations are assumptions until a GPU has been measured: :func:`calibrate` reads the
rows ``benchmarks/gpu_check.py --out FILE`` writes (tokens/s per check on random-initialised
models of the real shapes) and replaces the training utilisation by the one its LoRA step
reached (``lora_ckpt``, else ``lora``) and the prefill utilisation by its forward's; decoding
has no measured row and stays assumed. :class:`Calibration` says which stage is which.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from interp.errors import InputNotFoundError, InterpError
from interp.tiny_models import REAL_SHAPES

PAPER_MODELS: tuple[str, ...] = (
    "llama-3.1-8b-instruct",
    "mistral-small-instruct-2409",
    "qwen2.5-32b-instruct",
    "llama-3.1-70b-instruct",
)
H100_BF16_FLOPS = 989e12


@dataclass(frozen=True)
class PaperWorkload:
    """The paper's workload (STUDY.md sections 1 and 3) and the estimate's assumptions."""

    train_conversations: int = 1617
    mean_conversation_tokens: int = 700  # assumption: ShareGPT conversations cut to <= 1,024 tokens
    epochs: int = 10  # checkpoints 0.5 ... 10; "warm" is epoch 2
    finetunes: int = 2  # warm and cold
    eval_items: int = 500 + 500 + 500 + 125  # TriviaQA, TruthfulQA, MedQA, MASK disinformation
    prompts_per_item: int = 28
    eval_variants: int = 4  # original, warm, cold, warm system prompt
    prompt_tokens: int = 120
    new_tokens: int = 300
    validation_prompts: int = 1500  # warmth per checkpoint
    checkpoints: int = 8
    interp_forward_tokens: float = 5e7  # caching, directions, probes, sweeps, verdict, patching
    train_mfu: float = 0.35
    prefill_mfu: float = 0.45
    decode_mfu: float = 0.05  # decoding is memory-bound: low utilisation
    gpu_memory_gb: float = 80.0


def n_parameters(name: str, layers: int | None = None) -> int:
    """Parameter count from the architecture shape (embeddings counted once when tied);
    ``layers``: a depth cut of the shape (as ``gpu_check`` builds for the large models)."""
    _, full_layers, d, n_heads, n_kv, d_mlp, vocab = REAL_SHAPES[name]
    layers = full_layers if layers is None else layers
    head = d // n_heads
    attn = d * d * 2 + 2 * d * n_kv * head
    mlp = 3 * d * d_mlp
    tied = name.startswith(("smollm2",))
    return layers * (attn + mlp + 2 * d) + vocab * d * (1 if tied else 2) + d


def plan(
    workload: PaperWorkload | None = None, models: tuple[str, ...] = PAPER_MODELS
) -> pd.DataFrame:
    """One row per model: parameters, bf16 weight size, GPUs needed, tokens and GPU hours per
    stage."""
    w = workload or PaperWorkload()
    rows = []
    for name in models:
        n = n_parameters(name)
        weights_gb = 2 * n / 1e9
        gpus = max(
            1, math.ceil(weights_gb * 1.3 / w.gpu_memory_gb)
        )  # 30% headroom: activations, KV cache, LoRA state
        train_tokens = w.train_conversations * w.mean_conversation_tokens * w.epochs * w.finetunes
        eval_prompts = w.eval_items * w.prompts_per_item * w.eval_variants
        warmth_gen = w.validation_prompts * w.checkpoints * w.finetunes
        hours = {
            "train": 6 * n * train_tokens / (H100_BF16_FLOPS * w.train_mfu) / 3600,
            "eval": (
                2 * n * eval_prompts * w.prompt_tokens / w.prefill_mfu
                + 2 * n * (eval_prompts + warmth_gen) * w.new_tokens / w.decode_mfu
            )
            / H100_BF16_FLOPS
            / 3600,
            "interp": 2 * n * w.interp_forward_tokens / (H100_BF16_FLOPS * w.prefill_mfu) / 3600,
        }
        rows.append(
            {
                "model": name,
                "parameters_b": round(n / 1e9, 2),
                "weights_bf16_gb": round(weights_gb, 1),
                "gpus_80gb": gpus,
                "train_tokens_m": round(train_tokens / 1e6, 1),
                "eval_prompts": eval_prompts,
                **{f"gpu_hours_{k}": round(v, 1) for k, v in hours.items()},
                "gpu_hours_total": round(sum(hours.values()), 1),
            }
        )
    return pd.DataFrame(rows)


class CalibrationError(InterpError, ValueError):
    """A measured-throughput file that cannot calibrate the estimate."""


# gpu_check rows that measure each stage, best first
STAGE_CHECKS: dict[str, tuple[str, ...]] = {
    "train": ("lora_ckpt", "lora"),
    "prefill": ("forward",),
}
FLOPS_PER_TOKEN = {"train": 6, "prefill": 2}
_LABEL = re.compile(r"^(?P<shape>[^\[]+)(?:\[(?P<layers>\d+)L\])?$")


@dataclass(frozen=True)
class Calibration:
    """The workload with measured utilisations where a measurement exists, and per stage where
    its utilisation comes from (``assumed`` or ``calibrated from FILE: ...``)."""

    workload: PaperWorkload
    sources: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """One line: each stage's utilisation and its source."""
        w = self.workload
        parts = [
            f"{stage} MFU {getattr(w, f'{stage}_mfu'):.3f} "
            f"({self.sources.get(stage, 'assumed utilisation')})"
            for stage in ("train", "prefill", "decode")
        ]
        return "; ".join(parts)


def measured_utilisation(rows_file: Path) -> dict[str, tuple[float, str]]:
    """Per stage (train, prefill): the model FLOP utilisation a ``gpu_check`` TSV measured on
    the largest-parameter shape that passed, and a note naming the row. Utilisation is
    FLOPs-per-token x parameters x tokens/s / the H100's dense bf16 peak (the H200's is the
    same)."""
    if not rows_file.is_file():
        raise InputNotFoundError(f"throughput: no gpu_check rows at {rows_file}")
    with rows_file.open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    need = {"shape", "check", "status", "tokens_per_s"}
    if not rows or not need <= set(rows[0]):
        raise CalibrationError(
            f"throughput: {rows_file} is not a gpu_check TSV (expected columns "
            f"{sorted(need)}, found {sorted(rows[0]) if rows else 'no rows'})"
        )
    out: dict[str, tuple[float, str]] = {}
    for stage, checks in STAGE_CHECKS.items():
        best: tuple[int, float, str] | None = None
        for check in checks:
            for r in rows:
                m = _LABEL.match(r["shape"])
                if r["check"] != check or r["status"] != "PASS" or m is None:
                    continue
                if m["shape"] not in REAL_SHAPES or float(r["tokens_per_s"]) <= 0:
                    continue
                layers = int(m["layers"]) if m["layers"] else None
                n = n_parameters(m["shape"], layers)
                mfu = FLOPS_PER_TOKEN[stage] * n * float(r["tokens_per_s"]) / H100_BF16_FLOPS
                note = f"{r['shape']} {check} {float(r['tokens_per_s']):.0f} tokens/s"
                if best is None or n > best[0]:
                    best = (n, mfu, note)
            if best is not None:
                break
        if best is not None:
            out[stage] = (best[1], best[2])
    if not out:
        raise CalibrationError(
            f"throughput: {rows_file} has no passing forward or lora row on a paper shape "
            f"({', '.join(REAL_SHAPES)})"
        )
    return out


def calibrate(workload: PaperWorkload | None = None, rows_file: Path | None = None) -> Calibration:
    """The workload's utilisations, replaced by measured ones from ``rows_file`` (a
    ``gpu_check --out`` TSV) where it has them; without a file every stage stays assumed."""
    w = workload or PaperWorkload()
    if rows_file is None:
        return Calibration(w)
    measured = measured_utilisation(rows_file)
    changes: dict[str, Any] = {
        f"{stage}_mfu": round(mfu, 4) for stage, (mfu, _) in measured.items()
    }
    sources = {
        stage: f"calibrated from {rows_file}: {note}" for stage, (_, note) in measured.items()
    }
    return Calibration(dataclasses.replace(w, **changes), sources)
