"""The ``paper`` preset's plan without loading anything: sizes and estimated GPU hours.

The estimate is arithmetic on the paper's recipe (STUDY.md) and the models' real shapes
(:data:`interp.tiny_models.REAL_SHAPES`); every assumption is a named argument and is printed
with the plan. Training FLOPs use 6 x parameters x tokens (an upper bound for LoRA, whose
frozen weights need no weight gradients); inference uses 2 x parameters x tokens. Sustained
utilisation (MFU) turns FLOPs into hours on an H100 (989 TFLOP/s dense bf16).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

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


def n_parameters(name: str) -> int:
    """Parameter count from the architecture shape (embeddings counted once when tied)."""
    _, layers, d, n_heads, n_kv, d_mlp, vocab = REAL_SHAPES[name]
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
