"""The native backend: plain PyTorch hooks on the Hugging Face modules (the fastest path).

Works for any decoder that follows the Llama layout (Llama, Mistral, Qwen2): a ModuleList of
decoder layers, each with ``self_attn``, ``post_attention_layernorm`` and ``mlp``. Gemma-2 and
Gemma-3 put a norm on the attention OUTPUT (``post_attention_layernorm`` is a sandwich norm, and
the MLP input norm is ``pre_feedforward_layernorm``), so their ``attn_out`` and ``resid_mid``
would not be what the names promise: :func:`check_site` refuses them (``resid_pre``,
``resid_post`` and ``mlp_out`` are exact on every architecture here). If a
TransformerLens bridge has wrapped the modules in place, the original layers are found under
the wrappers, so both backends can run over the same weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from interp.hooks.base import (
    Backend,
    Edit,
    HookError,
    Recording,
    Reducer,
    eos_ids,
    truncate_after_eos,
)
from interp.hooks.positions import position_ids_from_mask
from interp.sites import Site, SiteKind


def unwrap(module: nn.Module) -> nn.Module:
    """The original HF module under TransformerLens bridge wrappers (or the module itself)."""
    while "_original_component" in module._modules:
        inner = module._modules["_original_component"]
        assert inner is not None
        module = inner
    return module


def decoder_layers(hf_model: Any) -> list[nn.Module]:
    """The decoder layers of a causal LM, in order (unwrapped)."""
    n = int(hf_model.config.num_hidden_layers)
    for module in hf_model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return [unwrap(m) for m in module]
    raise HookError(f"no ModuleList of {n} decoder layers found in {type(hf_model).__name__}")


SANDWICH_NORM_TYPES = ("gemma2", "gemma3", "gemma3_text")


def check_site(hf_model: Any, site: Site) -> None:
    """Refuse a site that this architecture does not expose exactly (:class:`HookError`)."""
    model_type = str(getattr(hf_model.config, "model_type", ""))
    if model_type in SANDWICH_NORM_TYPES and site.kind in ("attn_out", "resid_mid"):
        raise HookError(
            f"site {site.kind} is not supported on {model_type} ({type(hf_model).__name__}): its "
            "attention output passes a post-attention norm before it joins the residual stream, "
            "so the hooked tensors are not the residual; use resid_pre, resid_post or mlp_out"
        )


def site_module(layers: list[nn.Module], site: Site) -> nn.Module:
    """The module whose hook exposes ``site``."""
    layer = layers[site.layer]
    kind: SiteKind = site.kind
    if kind in ("resid_pre", "resid_post"):
        return layer
    name = {"attn_out": "self_attn", "resid_mid": "post_attention_layernorm", "mlp_out": "mlp"}[
        kind
    ]
    if not hasattr(layer, name):
        raise HookError(f"decoder layer {type(layer).__name__} has no {name} for site {site}")
    return getattr(layer, name)


def _first(out: Any) -> Tensor:
    return out[0] if isinstance(out, tuple) else out


def _replace_first(out: Any, new: Tensor) -> Any:
    return (new, *out[1:]) if isinstance(out, tuple) else new


class NativeBackend(Backend):
    """PyTorch forward hooks and pre-hooks, registered and removed inside ``hooked``."""

    name = "torch"
    supports_cache = True

    def __init__(self, loaded: Any):
        super().__init__(loaded)
        self._layers = decoder_layers(loaded.hf_model)

    @contextlib.contextmanager
    def _install(
        self, reads: dict[Site, Reducer], edits: dict[Site, Edit], recording: Recording
    ) -> Iterator[None]:
        handles: list[torch.utils.hooks.RemovableHandle] = []
        try:
            for site in set(reads) | set(edits):
                handles.append(self._register(site, reads.get(site), edits.get(site), recording))
            yield
        finally:
            for h in handles:
                h.remove()

    def _register(
        self, site: Site, reduce: Reducer | None, edit: Edit | None, recording: Recording
    ) -> torch.utils.hooks.RemovableHandle:
        check_site(self.loaded.hf_model, site)
        module = site_module(self._layers, site)

        def apply(x: Tensor) -> Tensor:
            if edit is not None:
                x = edit(x, site)
            if reduce is not None:
                recording.add(site, reduce(x))
            return x

        if site.kind == "resid_pre":

            def pre_hook(_m: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
                if args:
                    return (apply(args[0]), *args[1:]), kwargs
                return args, {**kwargs, "hidden_states": apply(kwargs["hidden_states"])}

            return module.register_forward_pre_hook(pre_hook, with_kwargs=True)
        if site.kind == "resid_mid":
            # The norm's input is the same tensor the block keeps as its residual, so an edit
            # is written in place: it changes the residual stream, not only the norm's input.
            def mid_hook(_m: nn.Module, args: tuple, kwargs: dict) -> None:
                x = args[0] if args else kwargs["hidden_states"]
                new = apply(x)
                if new is not x:
                    x.copy_(new)

            return module.register_forward_pre_hook(mid_hook, with_kwargs=True)

        def out_hook(_m: nn.Module, _args: tuple, out: Any) -> Any:
            return _replace_first(out, apply(_first(out)))

        return module.register_forward_hook(out_hook)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        position_ids = None if attention_mask is None else position_ids_from_mask(attention_mask)
        with self.loaded.running():
            return self.loaded.model(
                input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids
            ).logits

    def forward_for_reads(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> None:
        position_ids = None if attention_mask is None else position_ids_from_mask(attention_mask)
        with self.loaded.running():
            # the unembedding at one position instead of every one (the layers run the same)
            self.loaded.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                logits_to_keep=1,
            )

    def forward_cached(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        position_ids: Tensor,
        past_key_values: Any,
        logits_to_keep: int = 0,
    ) -> tuple[Tensor, Any]:
        with self.loaded.running():
            out = self.loaded.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                past_key_values=past_key_values,
                use_cache=True,
                logits_to_keep=logits_to_keep,
            )
        return out.logits, out.past_key_values

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
        new = out[:, input_ids.shape[1] :]
        return truncate_after_eos(new, eos_ids(self.loaded), tok.pad_token_id)
