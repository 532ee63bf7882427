"""Run a slice of decoder layers of an HF Llama / Mistral / Qwen2 model from a saved residual.

The prefix-reuse sweep (:mod:`interp.causal.sweep`) computes the residual stream up to a layer once,
then runs only the layers above the intervention for each setting. :class:`LayerRunner` reproduces
the model's own forward for any slice: the same position ids (from the attention mask, as every
backend passes them), the same rotary position embeddings, the same causal / padding mask (one per
attention type, so Qwen2's and Mistral's sliding-window layers get theirs), the final norm and the
unembedding. Running every layer from the embeddings equals ``backend.forward`` (tested).

The decoder layers are called as modules, so hooks installed by the torch backend (and LoRA
layers injected by peft) apply to the layers the runner executes.

A shared prefix (:class:`PrefixStates`): every chat prompt of a study starts with the same tokens
(SmolLM2's system header: 24 of a verdict row's ~70 tokens). :meth:`LayerRunner.prefix_states`
runs them once as one row and keeps each layer's keys and values; a batch of the rest of each row
then runs with those keys and values as its attention's past (:meth:`LayerRunner.prepare` /
:meth:`LayerRunner.run` with ``prefix``), at the positions after the prefix, which is what the
full rows compute (tested). An edit of the residual entering some block applies to the prefix
too: :meth:`LayerRunner.edited_prefix` recomputes the prefix's keys and values from that block on
under the edit (one short row per edit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.causal.packing import Packing
from interp.errors import InterpError
from interp.hooks.base import Edit
from interp.hooks.native import decoder_layers, unwrap
from interp.hooks.positions import position_ids_from_mask
from interp.sites import Site


class RunnerError(InterpError, RuntimeError):
    """The model's layout is not one the runner knows (it names what is missing)."""


# Gemma-2/3 soft-cap their logits and attention, and Gemma-3's rotary embedding takes a layer
# type: running their layers as a plain Llama stack would give wrong numbers, so they are refused.
UNSUPPORTED = {
    "gemma2": "final logit soft-capping and attention soft-capping",
    "gemma3": "per-layer-type rotary embeddings and logit soft-capping",
    "gemma3_text": "per-layer-type rotary embeddings and logit soft-capping",
}


@dataclass(frozen=True)
class PrefixStates:
    """A token prefix every row of a batch starts with, run once as one row.

    ``keys`` / ``values``: per layer ``(1, kv_heads, prefix, head_dim)``, what the rows'
    attention reads of the prefix; ``entering``: per block ``i`` the residual entering it,
    ``(1, prefix, d_model)`` (where an edit at a site above the embeddings starts from)."""

    tokens: tuple[int, ...]
    keys: tuple[Tensor, ...]
    values: tuple[Tensor, ...]
    entering: tuple[Tensor, ...]

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class Prepared:
    """What every layer needs for one batch: position ids, rotary embeddings, masks by type,
    and the length of the shared prefix the rows continue (0 without one)."""

    position_ids: Int[Tensor, "batch pos"]
    position_embeddings: tuple[Tensor, Tensor]
    masks: dict[str, Any]
    prefix_length: int = 0


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

    def prefix_states(self, tokens: Sequence[int]) -> PrefixStates:
        """Keys, values and block-entry residuals of ``tokens`` run alone as one row (see
        :class:`PrefixStates`); needs full attention in every layer (:attr:`can_pack`)."""
        self._check_full_attention("a shared prefix")
        if not tokens:
            raise RunnerError("a shared prefix needs at least one token")
        ids = torch.tensor([list(tokens)], dtype=torch.long, device=self.loaded.device)
        with torch.no_grad():
            h = self.embed_tokens(ids)
        return self._run_prefix(tuple(tokens), h, 0, (), (), ())

    def edited_prefix(
        self,
        prefix: PrefixStates,
        start: int,
        edit: Edit,
        site: Site,
    ) -> PrefixStates:
        """``prefix`` with ``edit`` (called with ``site``, as a hook would call it) applied to
        the residual entering block ``start`` and blocks ``start..`` run again from it (the
        blocks below keep their keys and values)."""
        if not 0 <= start <= self.n_layers:
            raise RunnerError(f"block {start} outside 0..{self.n_layers}")
        with torch.no_grad():
            h = edit(prefix.entering[start].clone(), site)
        return self._run_prefix(
            prefix.tokens,
            h,
            start,
            prefix.keys[:start],
            prefix.values[:start],
            prefix.entering[:start],
        )

    def _run_prefix(
        self,
        tokens: tuple[int, ...],
        hidden: Float[Tensor, "1 prefix d_model"],
        start: int,
        keys: tuple[Tensor, ...],
        values: tuple[Tensor, ...],
        entering: tuple[Tensor, ...],
    ) -> PrefixStates:
        """Blocks ``start..`` on the prefix's residual, collecting each block's keys and values
        (a fresh cache, so each layer's attention sees the prefix's own tokens only)."""
        from transformers import DynamicCache

        prep = self.prepare(
            torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device), hidden
        )
        cache = DynamicCache()
        new_entering = list(entering)
        with torch.no_grad(), self.loaded.running():
            for i in range(start, self.n_layers):
                new_entering.append(hidden)
                hidden = self._layer(i, hidden, prep, cache)
        new_entering.append(hidden)
        layers: list[Any] = [cache.layers[i] for i in range(start, self.n_layers)]
        new_keys: list[Tensor] = [layer.keys for layer in layers]
        new_values: list[Tensor] = [layer.values for layer in layers]
        return PrefixStates(tokens, (*keys, *new_keys), (*values, *new_values), tuple(new_entering))

    def _check_full_attention(self, what: str) -> None:
        if not self.can_pack:
            raise RunnerError(
                f"{what} needs full attention in every layer; this model has "
                f"{sorted(set(self.layer_types) - {'full_attention'})} layers"
            )

    def _prefix_cache(self, prefix: PrefixStates, rows: int, start: int, stop: int) -> Any:
        """A cache holding the prefix's keys and values for layers ``start..stop-1``, repeated
        for ``rows`` rows (the layers' attention appends the batch's own to a copy)."""
        from transformers import DynamicCache

        data = [
            (k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1))
            if start <= i < stop
            else (None, None)
            for i, (k, v) in enumerate(zip(prefix.keys, prefix.values, strict=True))
        ]
        return DynamicCache(ddp_cache_data=data)

    def prepare(
        self,
        attention_mask: Int[Tensor, "batch pos"],
        like: Float[Tensor, "batch pos d_model"],
        packing: Packing | None = None,
        prefix: PrefixStates | None = None,
    ) -> Prepared:
        """Position ids, rotary embeddings and attention masks for a batch (``like`` gives
        dtype/device); ``packing``: the batch's branch layout when rows are packed; ``prefix``:
        the tokens every row continues (``attention_mask`` and ``packing`` then cover the rows'
        own tokens, which sit at the positions after the prefix)."""
        from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask

        offset = 0 if prefix is None else len(prefix)
        full_mask = attention_mask
        past = None
        if prefix is not None:
            self._check_full_attention("a shared prefix")
            rows = attention_mask.shape[0]
            full_mask = torch.cat([attention_mask.new_ones((rows, offset)), attention_mask], dim=1)
            past = self._prefix_cache(prefix, rows, 0, 1)  # its length sizes the masks
        kwargs: dict[str, Any] = {
            "config": self.config,
            "inputs_embeds": like,
            "attention_mask": full_mask,
            "past_key_values": past,
        }
        if packing is None:
            position_ids = position_ids_from_mask(full_mask)[:, offset:]
        else:
            self._check_full_attention("packed rows")
            position_ids = packing.position_ids + offset
            kwargs["and_mask_function"] = packing.mask_function(offset)
        kwargs["position_ids"] = position_ids
        masks: dict[str, Any] = {}
        for kind in set(self.layer_types):
            fn = (
                create_sliding_window_causal_mask
                if kind == "sliding_attention"
                else create_causal_mask
            )
            masks[kind] = fn(**kwargs)
        return Prepared(position_ids, self.rotary(like, position_ids=position_ids), masks, offset)

    def run(
        self,
        hidden: Float[Tensor, "batch pos d_model"],
        prepared: Prepared,
        start: int,
        stop: int | None = None,
        prefix: PrefixStates | None = None,
    ) -> Float[Tensor, "batch pos d_model"]:
        """The residual after blocks ``start..stop-1`` given the residual entering block
        ``start`` (i.e. ``resid_post`` of block ``start-1``, or the embeddings when 0).
        ``prefix``: the shared prefix the batch was prepared with, its keys and values as the
        edit being run left them (:meth:`edited_prefix`)."""
        stop = self.n_layers if stop is None else stop
        if not 0 <= start <= stop <= self.n_layers:
            raise RunnerError(f"layer slice {start}..{stop} outside 0..{self.n_layers}")
        given = 0 if prefix is None else len(prefix)
        if given != prepared.prefix_length:
            raise RunnerError(
                f"the batch was prepared for a shared prefix of {prepared.prefix_length} tokens, "
                f"run with {given}"
            )
        cache = None if prefix is None else self._prefix_cache(prefix, hidden.shape[0], start, stop)
        with self.loaded.running():  # the view's adapter (a pair shares one model)
            for i in range(start, stop):
                hidden = self._layer(i, hidden, prepared, cache)
        return hidden

    def _layer(
        self, i: int, hidden: Tensor, prepared: Prepared, cache: Any
    ) -> Float[Tensor, "batch pos d_model"]:
        """Block ``i``; with ``cache`` its attention reads (and appends to) the cache's keys."""
        out = self.layers[i](
            hidden,
            attention_mask=prepared.masks[self.layer_types[i]],
            position_embeddings=prepared.position_embeddings,
            position_ids=prepared.position_ids,
            past_key_values=cache,
            use_cache=cache is not None,
        )
        return out[0] if isinstance(out, tuple) else out  # older transformers: (hidden, ...)

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
