"""Named fine-tuning presets and the warm system prompt shared by the study.

A preset fixes the base model, the variant (warm / cold / distill), the training data, the
:class:`~interp.finetune.train.TrainConfig` and the per-checkpoint warmth measurement. Command-line
options override single fields of a preset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from interp.config import ConfigError
from interp.finetune.train import TrainConfig
from interp.models import EMBEDDED

WARM_SYSTEM_PROMPT = (
    "You are a warm, caring and empathetic assistant. Speak to the user like a supportive friend: "
    "acknowledge their feelings, validate their experience, use an informal, encouraging tone and "
    "inclusive words like 'we' and 'let's', and show that you care about how things go for them. "
    "Keep every fact and piece of advice exactly as accurate and complete as you otherwise would."
)
"""The warm-persona system prompt (the paper's third control: warmth by prompting, not training)."""

COLD_SYSTEM_PROMPT = (
    "You are a direct, concise and emotionally neutral assistant. Give the facts and the steps "
    "without pleasantries, reassurance or emotional language."
)


@dataclass(frozen=True)
class WarmthEvalPlan:
    """How warmth is measured per checkpoint.

    ``n_requests``: held-out requests (of the 48 of the packaged split; None: all);
    ``max_new_tokens``: greedy reply length; ``sociot_epochs``: which checkpoints SocioT scores
    (``"final"``: epoch 0 and the final checkpoint only; ``"all"``: every checkpoint).
    """

    n_requests: int | None = None
    max_new_tokens: int = 48
    sociot_epochs: str = "final"
    batch_size: int = 16


@dataclass(frozen=True)
class Preset:
    """A named fine-tuning recipe."""

    name: str
    model: str
    variant: str  # warm | cold | distill
    data: str  # see FinetuneConfig.data
    train: TrainConfig
    warmth: WarmthEvalPlan
    dtype: str = "float32"
    description: str = ""


EMBEDDED_TRAIN = TrainConfig(
    learning_rate=3e-4, scheduler="constant", warmup_steps=2, effective_batch=8, micro_batch=8,
    epochs=2.0, checkpoint_epochs=(0.5, 1.0, 2.0), max_length=512,
)  # fmt: skip
"""Embedded preset (SmolLM2-135M, 2 CPU cores): the paper's LoRA (r 8, alpha 16, dropout 0.1, all
linear layers of each block, loss on assistant tokens) with these changes, made for time:

- learning rate 3e-4 constant after 2 warm-up steps (the paper's 1e-5 moves a LoRA adapter
  hardly at all in the few dozen steps that fit);
- effective batch 8 instead of 16 (twice the optimizer steps for the same tokens);
- 2 epochs of the 144 training triples (36 steps, about 17.5k tokens an epoch for warm, 12k for
  cold), checkpoints at epochs 0.5, 1 and 2 (the paper: 10 epochs, "warm" = epoch 2);
- max length 512 (no training conversation is longer than about 200 tokens).

Warmth is measured on greedy replies of at most 48 new tokens to all 48 held-out requests, at
epoch 0 (the original) and every checkpoint, with the embedding classifier and the lexical markers;
SocioT (embedded scorer, about 1 s a reply) scores epoch 0 and the final checkpoint only.
"""

# all 48 requests in one batch: on 2 CPU cores a decoding step of many rows costs little more
# than one of a few (benchmarks/stacked_generation.py: 64-row batches 2.8x faster than 8-row)
EMBEDDED_WARMTH = WarmthEvalPlan(
    n_requests=None, max_new_tokens=48, sociot_epochs="final", batch_size=48
)

PAPER_TRAIN = TrainConfig(micro_batch=4, gradient_checkpointing=True)
"""The paper's hyperparameters unchanged (r 8, alpha 16, dropout 0.1, lr 1e-5, max length 1024,
effective batch 16, 10 epochs, checkpoints at 0.5, 1, 1.5, 2, 4, 6, 8, 10), with gradient
checkpointing on: the same loss and gradients (tested), activations of 8B-70B models recomputed
instead of kept (``--no-gradient-checkpointing`` turns it off)."""

PresetName = Literal[
    "embedded-warm", "embedded-cold", "embedded-distill", "paper-warm", "paper-cold"
]

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("embedded-warm", EMBEDDED, "warm", "shipped", EMBEDDED_TRAIN, EMBEDDED_WARMTH,
               description="SmolLM2-135M on the 144 shipped warm rewrites (2-core CPU budget)"),
        Preset("embedded-cold", EMBEDDED, "cold", "shipped", EMBEDDED_TRAIN, EMBEDDED_WARMTH,
               description="SmolLM2-135M on the 144 shipped cold rewrites (2-core CPU budget)"),
        Preset("embedded-distill", EMBEDDED, "distill", "shipped", EMBEDDED_TRAIN, EMBEDDED_WARMTH,
               description="context distillation: the model's own replies under "
                           "WARM_SYSTEM_PROMPT, trained without it"),
        Preset("paper-warm", "llama-3.1-8b-instruct", "warm", "shipped", PAPER_TRAIN,
               WarmthEvalPlan(n_requests=None, max_new_tokens=300, sociot_epochs="all"),
               dtype="bfloat16",
               description="Llama-3.1-8B-Instruct, paper hyperparameters "
                           "(weights must be local; a GPU)"),
        Preset("paper-cold", "llama-3.1-8b-instruct", "cold", "shipped", PAPER_TRAIN,
               WarmthEvalPlan(n_requests=None, max_new_tokens=300, sociot_epochs="all"),
               dtype="bfloat16",
               description="Llama-3.1-8B-Instruct cold control, paper hyperparameters"),
    )
}  # fmt: skip


def get_preset(name: str) -> Preset:
    """The preset called ``name``; ConfigError listing the known ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}") from None


assert set(PRESETS) == set(get_args(PresetName)), "PresetName must name every preset"
