"""Run a slice of decoder layers of an HF Llama / Mistral / Qwen2 model from a saved residual.

The prefix-reuse sweep (:mod:`interp.causal.sweep`) computes the residual stream up to a layer once,
then runs only the layers above the intervention for each setting. :class:`LayerRunner` reproduces
the model's own forward for any slice: the same position ids (from the attention mask, as every
backend passes them), the same rotary position embeddings, the same causal / padding mask (one per
attention type, so Qwen2's and Mistral's sliding-window layers get theirs), the final norm and the
unembedding. Running every layer from the embeddings equals ``backend.forward`` (tested).

The decoder layers are called as modules, so hooks installed by the torch backend (and LoRA
layers injected by peft) apply to the layers the runner executes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.causal.packing import Packing
from interp.errors import InterpError
from interp.hooks.native import decoder_layers, unwrap
from interp.hooks.positions import position_ids_from_mask


class RunnerError(InterpError, RuntimeError):
    """The model's layout is not one the runner knows (it names what is missing)."""


# Gemma-2/3 soft-cap their logits and attention, and Gemma-3's rotary embedding takes a layer
# type: running their layers as a plain Llama stack would give wrong numbers, so they are refused.
UNSUPPORTED = {
    "gemma2": "final logit soft-capping and attention soft-capping",
    "gemma3": "per-layer-type rotary embeddings and logit soft-capping",
    "gemma3_text": "per-layer-type rotary embeddings and logit soft-capping",
}


@dataclass
class Prepared:
    """What every layer needs for one batch: position ids, rotary embeddings, masks by type."""

    position_ids: Int[Tensor, "batch pos"]
    position_embeddings: tuple[Tensor, Tensor]
    masks: dict[str, Any]


def runner_or_none(loaded: Any) -> LayerRunner | None:
    """A :class:`LayerRunner` on ``loaded``, or None where the runner does not know the layout
    (the caller falls back to hooked forwards)."""
    try:
        return LayerRunner(loaded)
    except RunnerError:
        return None


def inner_model(hf_model: Any) -> Any:
    """The decoder stack (``LlamaModel`` ...) under the causal-LM head, unwrapped."""
    inner = getattr(hf_model, "model", None)
    if inner is None or not hasattr(inner, "embed_tokens"):
        raise RunnerError(
            f"{type(hf_model).__name__} has no .model with embed_tokens (not a Llama-layout "
            "causal LM)"
        )
    return inner


class LayerRunner:
    """Runs layers ``start..stop-1`` of a loaded model on a residual stream (see module doc)."""

    def __init__(self, loaded: Any):
        hf = loaded.hf_model
        self.loaded = loaded
        self.config = hf.config
        model_type = getattr(self.config, "model_type", "")
        if model_type in UNSUPPORTED:
            raise RunnerError(
                f"the layer runner does not support {model_type} ({UNSUPPORTED[model_type]}); "
                "use a naive sweep (interp.causal.sweep.run_naive) on this architecture"
            )
        inner = inner_model(hf)
        for name in ("rotary_emb", "norm"):
            if not hasattr(inner, name):
                raise RunnerError(f"{type(inner).__name__} has no {name}")
        self.embed = unwrap(inner.embed_tokens)
        self.rotary = unwrap(inner.rotary_emb)
        self.norm = unwrap(inner.norm)
        self.lm_head = unwrap(hf.lm_head)
        self.layers = decoder_layers(hf)
        self.n_layers = len(self.layers)
        types = getattr(self.config, "layer_types", None)
        if types is None:
            sliding = (
                getattr(self.config, "sliding_window", None) is not None
                and self.config.model_type == "mistral"
            )
            types = ["sliding_attention" if sliding else "full_attention"] * self.n_layers
        self.layer_types: list[str] = list(types)

    def embed_tokens(
        self, input_ids: Int[Tensor, "batch pos"]
    ) -> Float[Tensor, "batch pos d_model"]:
        """Token embeddings (= ``resid_pre`` of block 0)."""
        with self.loaded.running():
            return self.embed(input_ids)

    @property
    def can_pack(self) -> bool:
        """Whether packed batches (:mod:`interp.causal.packing`) run exactly here: not with
        sliding-window layers, whose window would count the other branches' tokens."""
        return all(kind == "full_attention" for kind in self.layer_types)

    def prepare(
        self,
        attention_mask: Int[Tensor, "batch pos"],
        like: Float[Tensor, "batch pos d_model"],
        packing: Packing | None = None,
    ) -> Prepared:
        """Position ids, rotary embeddings and attention masks for a batch (``like`` gives
        dtype/device); ``packing``: the batch's branch layout when rows are packed."""
        from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask

        kwargs: dict[str, Any] = {
            "config": self.config,
            "inputs_embeds": like,
            "attention_mask": attention_mask,
            "past_key_values": None,
        }
        if packing is None:
            position_ids = position_ids_from_mask(attention_mask)
        else:
            if not self.can_pack:
                raise RunnerError(
                    "packed rows need full attention in every layer; this model has "
                    f"{sorted(set(self.layer_types) - {'full_attention'})} layers"
                )
            position_ids = packing.position_ids
            kwargs["and_mask_function"] = packing.mask_function()
        kwargs["position_ids"] = position_ids
        masks: dict[str, Any] = {}
        for kind in set(self.layer_types):
            fn = (
                create_sliding_window_causal_mask
                if kind == "sliding_attention"
                else create_causal_mask
            )
            masks[kind] = fn(**kwargs)
        return Prepared(position_ids, self.rotary(like, position_ids=position_ids), masks)

    def run(
        self,
        hidden: Float[Tensor, "batch pos d_model"],
        prepared: Prepared,
        start: int,
        stop: int | None = None,
    ) -> Float[Tensor, "batch pos d_model"]:
        """The residual after blocks ``start..stop-1`` given the residual entering block
        ``start`` (i.e. ``resid_post`` of block ``start-1``, or the embeddings when 0)."""
        stop = self.n_layers if stop is None else stop
        if not 0 <= start <= stop <= self.n_layers:
            raise RunnerError(f"layer slice {start}..{stop} outside 0..{self.n_layers}")
        with self.loaded.running():  # the view's adapter (a pair shares one model)
            for i in range(start, stop):
                hidden = self.layers[i](
                    hidden,
                    attention_mask=prepared.masks[self.layer_types[i]],
                    position_embeddings=prepared.position_embeddings,
                    position_ids=prepared.position_ids,
                    past_key_values=None,
                    use_cache=False,
                )
                if isinstance(hidden, tuple):  # older transformers return (hidden, ...)
                    hidden = hidden[0]
        return hidden

    def logits(self, final_resid: Float[Tensor, "n d_model"]) -> Float[Tensor, "n vocab"]:
        """Unembed residuals taken after the last block (final norm, then the LM head).

        Any leading shape works; pass only the positions whose logits are needed."""
        with self.loaded.running():
            return self.lm_head(self.norm(final_resid))

    def logits_at(self, final_resid: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
        """``(row, pos) -> logits`` of ``final_resid`` at those flat positions (for readouts;
        the indices may live on another device than the residual, as under a device map)."""
        at = final_resid.device
        return lambda row, pos: self.logits(final_resid[row.to(at), pos.to(at)])

    def forward(
        self, input_ids: Int[Tensor, "batch pos"], attention_mask: Int[Tensor, "batch pos"]
    ) -> Float[Tensor, "batch pos vocab"]:
        """A full forward through the runner (equals the model's forward; used by tests)."""
        with torch.no_grad():
            h = self.embed_tokens(input_ids)
            prepared = self.prepare(attention_mask, h)
            return self.logits(self.run(h, prepared, 0))
