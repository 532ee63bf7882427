"""Warm and cold LoRA fine-tuning (issue 5): data, targets, the training loop, warmth per
checkpoint.

- :mod:`.examples`: tokenised conversations with the loss on assistant tokens only;
- :mod:`.schedule`: seeded data order and checkpoint steps (a pure function of the step);
- :mod:`.train`: :class:`TrainConfig` (paper defaults) and the resumable LoRA loop;
- :mod:`.presets`: named recipes (``embedded-warm``, ``embedded-cold``, ...) and
  :data:`WARM_SYSTEM_PROMPT`;
- :mod:`.sources`, :mod:`.sharegpt`, :mod:`.rewrite`, :mod:`.distill`: where training targets
  come from (shipped rewrites, ShareGPT, endpoint rewrites, context distillation);
- :mod:`.checkpoint_warmth`: warmth of greedy held-out replies at every checkpoint.

The command is ``interp finetune`` (:mod:`interp.commands.finetune`).
"""

from interp.finetune.examples import (
    IGNORE_INDEX,
    TrainingConversation,
    TrainingExample,
    tokenize_all,
    tokenize_conversation,
    triple_conversations,
)
from interp.finetune.presets import PRESETS, WARM_SYSTEM_PROMPT, Preset, get_preset
from interp.finetune.schedule import Schedule, checkpoint_name
from interp.finetune.train import TrainConfig, TrainResult, train

__all__ = [
    "IGNORE_INDEX",
    "PRESETS",
    "WARM_SYSTEM_PROMPT",
    "Preset",
    "Schedule",
    "TrainConfig",
    "TrainResult",
    "TrainingConversation",
    "TrainingExample",
    "checkpoint_name",
    "get_preset",
    "tokenize_all",
    "tokenize_conversation",
    "train",
    "triple_conversations",
]
