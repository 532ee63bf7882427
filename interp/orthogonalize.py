"""Weight orthogonalisation: a permanently edited copy of a model that cannot write a direction.

Every matrix that writes into the residual stream (the token embedding, each attention output
projection ``o_proj`` and each MLP ``down_proj``, biases included) is projected onto the
orthogonal complement of the unit direction ``u``: ``W <- (I - u u^T) W``. The residual stream
then never holds a component along ``u``, which is exactly all-layer directional ablation at run
time (:func:`interp.steer.ablation_everywhere`: ablate ``u`` from the embedding and from every
``attn_out`` and ``mlp_out``), as in Arditi et al. (2024). A LoRA adapter is merged into the copy
first; tied input/output embeddings are untied so the unembedding is left unchanged.

The original model is never modified. :func:`save_orthogonalized` writes a checkpoint that
:func:`interp.models.load_model` loads as a local folder, with a meta.json naming the direction.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn

from interp import paths
from interp.artifacts import atomic_dir, provenance, sha256_file
from interp.causal.layer_runner import inner_model
from interp.directions import Direction
from interp.hooks.native import decoder_layers, unwrap
from interp.models import LoadedModel, weights_fingerprint


class OrthogonalizeError(ValueError):
    """The model or direction cannot be orthogonalised (layout, zero vector, wrong width)."""


def _project_rows_out(weight: Tensor, u: Tensor) -> None:
    """In place: ``weight`` (out = d_model, in) <- (I - u u^T) weight."""
    w = weight.data.double()
    w -= torch.outer(u, u @ w)
    weight.data.copy_(w.to(weight.dtype))


def _project_cols_out(weight: Tensor, u: Tensor) -> None:
    """In place: embedding rows (vocab, d_model) <- rows (I - u u^T)."""
    w = weight.data.double()
    w -= torch.outer(w @ u, u)
    weight.data.copy_(w.to(weight.dtype))


def _merged_copy(loaded: LoadedModel) -> Any:
    model = copy.deepcopy(loaded.model)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return model


def orthogonalize(
    loaded: LoadedModel, unit: Float[Tensor, " d_model"], name: str = "direction"
) -> LoadedModel:
    """A new :class:`LoadedModel` whose residual-writing weights are orthogonal to ``unit``
    (normalised here); ``loaded`` (and its adapter) is left untouched."""
    if unit.ndim != 1 or unit.shape[0] != loaded.d_model:
        raise OrthogonalizeError(
            f"direction must be a ({loaded.d_model},) vector, found {tuple(unit.shape)}"
        )
    if unit.norm() == 0 or not torch.isfinite(unit).all():
        raise OrthogonalizeError("cannot orthogonalise against a zero or non-finite vector")
    hf = _merged_copy(loaded)
    u = (unit.double() / unit.double().norm()).to(next(hf.parameters()).device)
    inner = inner_model(hf)
    embed: Any = unwrap(inner.embed_tokens)
    head: Any = unwrap(hf.lm_head)
    if head.weight is embed.weight or head.weight.data_ptr() == embed.weight.data_ptr():
        head.weight = nn.Parameter(embed.weight.detach().clone())
    hf.config.tie_word_embeddings = False
    if getattr(hf.config, "text_config", None) is not None:
        hf.config.text_config.tie_word_embeddings = False
    with torch.no_grad():
        _project_cols_out(embed.weight, u)
        for layer in decoder_layers(hf):
            block: Any = layer
            for module in (block.self_attn.o_proj, block.mlp.down_proj):
                proj: Any = unwrap(module)
                _project_rows_out(proj.weight, u)
                if getattr(proj, "bias", None) is not None:
                    proj.bias.data -= (proj.bias.data.double() @ u).to(proj.bias.dtype) * u.to(
                        proj.bias.dtype
                    )
    hf.eval()
    base = loaded.name if loaded.adapter is None else f"{loaded.name}+{Path(loaded.adapter).name}"
    return LoadedModel(
        name=f"{base}-ortho-{name}",
        model=hf,
        tokenizer=loaded.tokenizer,
        weights_hash=weights_fingerprint(hf),
        extra={"orthogonalized_from": loaded.provenance()},
    )


def direction_unit(direction: Direction, layer: int) -> Float[Tensor, " d_model"]:
    """The unit vector of ``direction`` at ``layer`` (the single vector removed everywhere)."""
    return direction.unit(layer)


def save_orthogonalized(
    ortho: LoadedModel, folder: Path, direction: Direction, layer: int, replace: bool = False
) -> Path:
    """Write ``ortho`` as a safetensors checkpoint + tokenizer + meta.json naming the direction
    (refuses to overwrite unless ``replace``)."""
    folder = Path(folder)
    with atomic_dir(folder, replace=replace) as tmp:
        ortho.hf_model.save_pretrained(tmp)
        ortho.tokenizer.save_pretrained(tmp)
        weights = tmp / "model.safetensors"
        meta = provenance(
            stage="orthogonalize",
            direction={
                "name": direction.name,
                "method": direction.method,
                "site_kind": direction.site_kind,
                "position": direction.position,
                "layer": layer,
                "sources": direction.sources,
            },
            unit=[float(x) for x in direction.unit(layer)],
            source_model=ortho.extra.get("orthogonalized_from"),
            weights_hash=ortho.weights_hash,
            weights_sha256=sha256_file(weights) if weights.is_file() else None,
            edited=[
                "embed_tokens",
                "self_attn.o_proj (every layer)",
                "mlp.down_proj (every layer)",
            ],
            equivalent_to=(
                "directional ablation of the unit vector at every layer (embedding, attn_out, "
                "mlp_out)"
            ),
        )
        (tmp / paths.META_FILE).write_text(json.dumps(meta, indent=2, default=str))
    return folder
