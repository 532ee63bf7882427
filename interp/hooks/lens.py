"""The TransformerLens backend: ``TransformerBridge`` booted over the already-loaded HF model.

The bridge wraps the HF modules in place (weights shared, no second copy) and exposes the
TransformerLens hook names (``blocks.L.hook_resid_post`` ...). It is booted once per loaded
model and kept in ``loaded.extra["transformer_bridge"]``; the other backends keep working on the
wrapped model. Generation runs HF's ``generate`` through the wrapped modules, so the bridge's
hooks fire at every step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from torch import Tensor

from interp.hooks.base import (
    Backend,
    Edit,
    HookError,
    Recording,
    Reducer,
    eos_ids,
    truncate_after_eos,
)
from interp.hooks.native import check_site
from interp.hooks.positions import position_ids_from_mask
from interp.sites import Site


def bridge_for(loaded: Any) -> Any:
    """The TransformerBridge over ``loaded``'s HF model (booted on first use, then reused)."""
    if "transformer_bridge" not in loaded.extra:
        from transformer_lens.model_bridge import TransformerBridge

        try:
            bridge = TransformerBridge.boot_transformers(
                loaded.name,
                hf_model=loaded.hf_model,
                tokenizer=loaded.tokenizer,
                dtype=loaded.dtype,
            )
        except Exception as exc:
            raise HookError(
                f"TransformerLens could not bridge {loaded.name!r} "
                f"({type(loaded.hf_model).__name__}): {exc}"
            ) from exc
        loaded.extra["transformer_bridge"] = bridge
    return loaded.extra["transformer_bridge"]


class LensBackend(Backend):
    """Hooks through TransformerLens hook points (``bridge.hooks`` context)."""

    name = "transformerlens"

    def __init__(self, loaded: Any):
        super().__init__(loaded)
        self.bridge = bridge_for(loaded)

    @contextlib.contextmanager
    def _install(
        self, reads: dict[Site, Reducer], edits: dict[Site, Edit], recording: Recording
    ) -> Iterator[None]:
        fwd_hooks = []
        for site in set(reads) | set(edits):
            check_site(self.loaded.hf_model, site)
            if self.bridge.get_hook_point(site.name) is None:
                raise HookError(f"TransformerLens bridge has no hook point {site.name}")
            fwd_hooks.append(
                (site.name, self._hook(site, reads.get(site), edits.get(site), recording))
            )
        with self.bridge.hooks(fwd_hooks=fwd_hooks):
            yield

    @staticmethod
    def _hook(site: Site, reduce: Reducer | None, edit: Edit | None, recording: Recording) -> Any:
        def hook(x: Tensor, hook: Any) -> Tensor:
            if edit is not None:
                new = edit(x, site)
                if site.kind == "resid_mid" and new is not x:
                    x.copy_(new)  # the residual itself, as in the native backend
                else:
                    x = new
            if reduce is not None:
                recording.add(site, reduce(x))
            return x

        return hook

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        kwargs: dict[str, Any] = {}
        if attention_mask is not None:
            kwargs["attention_mask"] = attention_mask
            kwargs["position_ids"] = position_ids_from_mask(attention_mask)
        with self.loaded.running():
            return self.bridge(input_ids, return_type="logits", **kwargs)

    def generate(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, **generate_kwargs: Any
    ) -> Tensor:
        tok = self.loaded.tokenizer
        with self.loaded.running():
            out = self.loaded.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                pad_token_id=tok.pad_token_id,
                **generate_kwargs,
            )
        return truncate_after_eos(
            out[:, input_ids.shape[1] :], eos_ids(self.loaded), tok.pad_token_id
        )
