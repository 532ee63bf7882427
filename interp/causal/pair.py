"""The two models every causal experiment compares: the original and the warm fine-tune."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from interp.finetune.presets import WARM_SYSTEM_PROMPT
from interp.hooks import get_backend
from interp.hooks.base import Backend
from interp.models import LoadedModel, ModelLoadError, adapter_folder, load_model

log = logging.getLogger(__name__)


@dataclass
class ModelPair:
    """The original model and the warm model (its adapter), or the original weights under the
    warm system prompt standing in for it (``warm_system`` set, recorded in ``warm_source``)."""

    original: LoadedModel
    warm: LoadedModel
    warm_system: str | None
    warm_source: str

    def backend(self, which: str) -> Backend:
        """The torch backend of ``"original"`` or ``"warm"``."""
        return get_backend(self.original if which == "original" else self.warm, "torch")

    def system(self, which: str) -> str | None:
        """The system prompt of ``"original"`` (none) or ``"warm"``."""
        return None if which == "original" else self.warm_system


STAND_IN = "system prompt (interp.finetune.presets.WARM_SYSTEM_PROMPT)"


def load_pair(model: str, warm: str | None, *, stand_in_if_missing: bool = True) -> ModelPair:
    """Load ``model`` and, with the adapter ``warm`` (folder or run name), the warm model.

    With ``warm=None``, or when the adapter cannot be found and ``stand_in_if_missing``, the
    original weights under the warm system prompt stand in (a warning says so); otherwise a
    missing adapter raises :class:`ModelLoadError`."""
    original = load_model(model)
    if warm is None:
        log.warning("no warm adapter given; the warm system prompt stands in for the warm model")
        return ModelPair(original, original, WARM_SYSTEM_PROMPT, STAND_IN)
    try:
        folder = adapter_folder(warm)
    except ModelLoadError as exc:
        if not stand_in_if_missing:
            raise
        log.warning(
            "no warm adapter (%s); the warm system prompt stands in for the warm model", exc
        )
        return ModelPair(original, original, WARM_SYSTEM_PROMPT, STAND_IN)
    return ModelPair(original, load_model(model, adapter=folder), None, f"adapter {folder}")
