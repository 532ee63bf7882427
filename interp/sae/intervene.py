"""Latent-level interventions through an SAE, as hook edits (``interp.hooks.base.Edit``).

:func:`sae_edit` encodes the site's activation, edits chosen latents (ablate to zero or clamp to
a value), decodes, and adds the reconstruction error ``x - decode(encode(x))`` back, so that with
no latent edited the model's activations (and logits) are unchanged up to float rounding, and an
edit changes only what the edited latents carried. Use it inside
``backend.hooked(edit={Site(layer, "resid_post"): sae_edit(sae, ...)})``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from jaxtyping import Float
from torch import Tensor

from interp.causal.arms import Arm
from interp.hooks.base import Edit
from interp.sites import Site

LatentOp = Literal["ablate", "clamp", "none"]


@dataclass(frozen=True)
class LatentEdit:
    """Which latents to edit and how. ``values``: clamp targets, one per latent (clamp only)."""

    op: LatentOp
    latents: tuple[int, ...] = ()
    values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.op == "clamp" and len(self.values) != len(self.latents):
            raise ValueError(
                f"clamp needs one value per latent, found {len(self.values)} for "
                f"{len(self.latents)}"
            )
        if self.op != "none" and not self.latents:
            raise ValueError(f"{self.op} needs at least one latent")


def encode_decode(
    sae: Any, x: Float[Tensor, "... d"]
) -> tuple[Float[Tensor, "... d_sae"], Float[Tensor, "... d"]]:
    """Latent activations (on the SAE's device, in its dtype) and the reconstruction of ``x``
    (returned on x's device in x's dtype): ``x`` may live elsewhere than the SAE."""
    w = sae.W_dec
    feats = sae.encode(x.to(device=w.device, dtype=w.dtype))
    return feats, sae.decode(feats).to(device=x.device, dtype=x.dtype)


def sae_edit(sae: Any, edit: LatentEdit) -> Edit:
    """A hook edit: ``x -> decode(edited encode(x)) + (x - decode(encode(x)))``."""
    index = torch.tensor(edit.latents, dtype=torch.long)
    values = torch.tensor(edit.values, dtype=sae.W_dec.dtype) if edit.op == "clamp" else None

    def apply(x: Float[Tensor, "batch pos d"], site: Site) -> Float[Tensor, "batch pos d"]:
        with torch.no_grad():
            feats, recon = encode_decode(sae, x)
            error = x - recon
            if edit.op == "none":
                return recon + error
            edited = feats.clone()
            where = index.to(edited.device)
            if edit.op == "ablate":
                edited[..., where] = 0.0
            else:
                assert values is not None
                edited[..., where] = values.to(edited.device)
            return sae.decode(edited).to(device=x.device, dtype=x.dtype) + error

    return apply


def sae_splice(sae: Any, with_error: bool) -> Edit:
    """A hook edit replacing ``x`` by its reconstruction (``with_error``: plus the error, i.e.
    x)."""

    def apply(x: Float[Tensor, "batch pos d"], site: Site) -> Float[Tensor, "batch pos d"]:
        with torch.no_grad():
            _, recon = encode_decode(sae, x)
            return recon + (x - recon) if with_error else recon

    return apply


def random_latents(d_sae: int, k: int, exclude: Sequence[int], seed: int) -> tuple[int, ...]:
    """``k`` distinct latents drawn uniformly (seeded) among those not in ``exclude``."""
    pool = torch.tensor(sorted(set(range(d_sae)) - set(exclude)), dtype=torch.long)
    if len(pool) < k:
        raise ValueError(f"cannot draw {k} latents from {len(pool)} candidates")
    g = torch.Generator().manual_seed(seed)
    return tuple(int(i) for i in pool[torch.randperm(len(pool), generator=g)[:k]].sort().values)


def latent_arms(
    sae: Any,
    site: Site,
    sets: Mapping[str, Mapping[str, Any]],
    original: Arm,
    warm: Arm,
    *,
    clamp_scale: float,
    n_random: int,
    seed: int,
) -> list[Arm]:
    """The latent-intervention arms, as ordinary verdict arms (:class:`interp.causal.arms.Arm`):
    the unedited warm and original models; each set's top latents ablated in the warm model;
    each warmth set clamped (``clamp_scale`` x its 99th-percentile activation) in the original;
    and one control of ``n_random`` replicates ablating as many random latents outside every set.

    ``sets``: direction name -> ``{"latents": [...], "clamp_values": [...], "sycophancy": bool}``
    (``latent_sets.json`` of ``interp sae decompose``).
    """
    arms = [warm, original]
    k = max(len(s["latents"]) for s in sets.values())
    for name, s in sets.items():
        top = tuple(s["latents"])
        ablate = {site: sae_edit(sae, LatentEdit("ablate", top))}
        arms.append(
            Arm("warm", f"sae-ablate:top{len(top)}-{name}", warm.backend, warm.system, (ablate,))
        )
        if not s["sycophancy"]:
            values = tuple(clamp_scale * v for v in s["clamp_values"])
            clamp = {site: sae_edit(sae, LatentEdit("clamp", top, values))}
            arms.append(
                Arm(
                    "original",
                    f"sae-clamp:top{len(top)}-{name}",
                    original.backend,
                    original.system,
                    (clamp,),
                )
            )
    used = sorted({i for s in sets.values() for i in s["latents"]})
    controls = tuple(
        {
            site: sae_edit(
                sae,
                LatentEdit("ablate", random_latents(int(sae.cfg.d_sae), k, used, seed=seed + r)),
            )
        }
        for r in range(n_random)
    )
    arms.append(Arm("warm", "ablate:random-latents", warm.backend, warm.system, controls))
    return arms
