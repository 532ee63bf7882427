"""The nnsight backend: ``LanguageModel`` over the already-loaded HF model.

Sites are read and edited inside an nnsight trace, in forward-pass order (nnsight requires it).
``remote=True`` sends the trace to NDIF for models too large for the user's machine (the model
is then named by its hub id; the local weights can be meta tensors). Generation disables the
early EOS stop and truncates after EOS itself, so every step's edit is applied exactly as in a
normal sampling run.
"""

from __future__ import annotations

import contextlib
import warnings
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
from interp.hooks.native import check_site, decoder_layers
from interp.hooks.positions import position_ids_from_mask
from interp.sites import Site, sort_sites


class NnsightBackend(Backend):
    """Reads and edits through nnsight envoys; ``remote`` is passed to every trace."""

    name = "nnsight"

    def __init__(self, loaded: Any, remote: bool = False):
        super().__init__(loaded)
        import nnsight

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.lm = nnsight.LanguageModel(loaded.model, tokenizer=loaded.tokenizer)
        self.remote = remote
        self._paths = self._layer_paths()
        self._plan: tuple[dict[Site, Reducer], dict[Site, Edit], Recording] | None = None

    def _layer_paths(self) -> list[str]:
        names = {id(m): n for n, m in self.loaded.model.named_modules()}
        return [names[id(layer)] for layer in decoder_layers(self.loaded.hf_model)]

    def _envoy(self, path: str) -> Any:
        env = self.lm
        for part in path.split("."):
            env = env[int(part)] if part.isdigit() else getattr(env, part)
        return env

    @contextlib.contextmanager
    def _install(
        self, reads: dict[Site, Reducer], edits: dict[Site, Edit], recording: Recording
    ) -> Iterator[None]:
        for site in set(reads) | set(edits):
            check_site(self.loaded.hf_model, site)
        self._plan = (reads, edits, recording)
        try:
            yield
        finally:
            self._plan = None

    def _apply_plan(self, saved: dict[Site, Any]) -> None:
        """Inside a trace: visit planned sites in order, edit, and save reads."""
        if self._plan is None:
            return
        reads, edits, _ = self._plan
        for site in sort_sites(set(reads) | set(edits)):
            layer = self._envoy(self._paths[site.layer])
            x: Any
            if site.kind == "resid_pre":
                x = layer.input
            elif site.kind == "attn_out":
                x = layer.self_attn.output[0]
            elif site.kind == "resid_mid":
                x = layer.post_attention_layernorm.input
            elif site.kind == "mlp_out":
                x = layer.mlp.output
            else:
                x = layer.output
            if site in edits:
                new = edits[site](x, site)
                if new is not x:
                    x[:] = new
            if site in reads:
                value: Any = reads[site](x)
                saved.setdefault(site, []).append(value.save())

    def _record(self, saved: dict[Site, Any]) -> None:
        if self._plan is None:
            return
        recording = self._plan[2]
        for site, values in saved.items():
            for v in values:
                recording.add(site, v)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        inputs: dict[str, Tensor] = {"input_ids": input_ids}
        if attention_mask is not None:
            inputs["attention_mask"] = attention_mask
            inputs["position_ids"] = position_ids_from_mask(attention_mask)
        saved: dict[Site, Any] = {}
        try:
            with self.loaded.running(), self.lm.trace(inputs, remote=self.remote):
                self._apply_plan(saved)
                logits = self.lm.output.logits.save()
        except HookError:
            raise
        except Exception as exc:
            raise HookError(f"nnsight trace failed: {type(exc).__name__}: {exc}") from exc
        self._record(saved)
        return logits

    def generate(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, **generate_kwargs: Any
    ) -> Tensor:
        tok = self.loaded.tokenizer
        steps = int(generate_kwargs.pop("max_new_tokens", 20))
        inputs: dict[str, Tensor] = {"input_ids": input_ids}
        if attention_mask is not None:
            inputs["attention_mask"] = attention_mask
        saved: dict[Site, Any] = {}
        with (
            self.loaded.running(),
            self.lm.generate(
                inputs,
                max_new_tokens=steps,
                eos_token_id=None,
                pad_token_id=tok.pad_token_id,
                remote=self.remote,
                **generate_kwargs,
            ) as tracer,
        ):
            for _ in tracer.iter[0:steps]:
                self._apply_plan(saved)
            result = tracer.result.save()
        self._record(saved)
        return truncate_after_eos(
            result[:, input_ids.shape[1] :], eos_ids(self.loaded), tok.pad_token_id
        )
