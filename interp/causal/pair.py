"""The two models every causal experiment compares: the original and the warm fine-tune.

With an adapter and ``merge_adapters`` (the commands' default), the original and the warm model
are two copies of the weights, the warm one with its adapter folded in: no adapter layers run in
either model's forwards. Without it, the base weights load once: the warm model is the base with
the adapter and the original is a view of the same module with every adapter switched off
(:func:`interp.models.base_view`): each view's forwards run inside its own adapter state, so
the two arms can be called in any order without a second copy of the weights (less memory,
slower forwards).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp.finetune.presets import WARM_SYSTEM_PROMPT
from interp.hooks import get_backend
from interp.hooks.base import Backend
from interp.models import (
    AdapterState,
    DType,
    LoadedModel,
    ModelLoadError,
    adapter_folder,
    adapter_view,
    base_view,
    load_model,
)

log = logging.getLogger(__name__)


@dataclass
class ModelPair:
    """The original model and the warm model (its adapter), or the original weights under the
    warm system prompt standing in for it (``warm_system`` set, recorded in ``warm_source``).

    With an adapter both share one loaded module (see the module doc); their ``hooked()``
    contexts must not be open at the same time (hooks sit on the shared modules)."""

    original: LoadedModel
    warm: LoadedModel
    warm_system: str | None
    warm_source: str
    load_options: dict[str, Any] = field(default_factory=dict)

    def backend(self, which: str) -> Backend:
        """The torch backend of ``"original"`` or ``"warm"``."""
        return get_backend(self.original if which == "original" else self.warm, "torch")

    def system(self, which: str) -> str | None:
        """The system prompt of ``"original"`` (none) or ``"warm"``."""
        return None if which == "original" else self.warm_system

    def with_adapter(self, adapter: str | Path, name: str) -> LoadedModel:
        """Another fine-tune of the same base (e.g. the cold model) as a view of the shared
        weights when the pair's warm model is an adapter view; otherwise (a merged adapter, or
        the warm model standing in) a fresh load with the pair's load options."""
        folder = adapter_folder(adapter)
        if self.warm.adapter_state is not None:
            return adapter_view(self.warm, folder, name)
        return load_model(self.original.name, adapter=folder, **self.load_options)


STAND_IN = "system prompt (interp.finetune.presets.WARM_SYSTEM_PROMPT)"


def load_pair(
    model: str,
    warm: str | None,
    *,
    stand_in_if_missing: bool = True,
    dtype: DType = "float32",
    device: str = "cpu",
    device_map: str | dict[str, Any] | None = None,
    load_in_4bit: bool = False,
    merge_adapters: bool = False,
) -> ModelPair:
    """Load ``model`` and, with the adapter ``warm`` (folder or run name), the warm model: a
    second copy with the adapter folded in (``merge_adapters``), else the same weights with the
    adapter on (the original: the adapter off).

    With ``warm=None``, or when the adapter cannot be found and ``stand_in_if_missing``, the
    original weights under the warm system prompt stand in (a warning says so); otherwise a
    missing adapter raises :class:`ModelLoadError`. ``dtype``, ``device``, ``device_map``,
    ``load_in_4bit`` and ``merge_adapters`` go to :func:`interp.models.load_model`."""
    options: dict[str, Any] = {
        "dtype": dtype,
        "device": device,
        "device_map": device_map,
        "load_in_4bit": load_in_4bit,
        "merge_adapters": merge_adapters,
    }
    folder: Path | None = None
    reason = "no warm adapter given"
    if warm is not None:
        try:
            folder = adapter_folder(warm)
        except ModelLoadError as exc:
            if not stand_in_if_missing:
                raise
            reason = f"no warm adapter ({exc})"
    if folder is None:
        log.warning("%s; the warm system prompt stands in for the warm model", reason)
        original = load_model(model, **options)
        return ModelPair(original, original, WARM_SYSTEM_PROMPT, STAND_IN, options)
    warm_model = load_model(model, adapter=folder, **options)
    if warm_model.extra.get("adapter_merged", False):
        original = load_model(model, **options)
        return ModelPair(original, warm_model, None, f"adapter {folder}", options)
    warm_model.adapter_state = AdapterState(warm_model.model.active_adapter)
    return ModelPair(base_view(warm_model), warm_model, None, f"adapter {folder}", options)
