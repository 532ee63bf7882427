"""How good an SAE is: explained variance, L0, dead latents, and the next-token loss when its
reconstruction is spliced into the model in place of the activation it reads.

The spliced losses edit one residual site: the layers below it run once per batch and each
variant (clean, spliced, spliced plus error, mean-ablated) runs only the layers above it, with
logits at the scored positions only (:class:`interp.causal.layer_runner.LayerRunner`; the hooked
forward of every variant where the runner does not apply: another backend, a site that is not a
residual, an architecture the runner refuses)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.causal.layer_runner import LayerRunner, runner_or_none
from interp.causal.suffix_arms import block_after
from interp.hooks.base import Backend, Edit
from interp.sae.activations import TextRow, encode_row
from interp.sae.intervene import encode_decode, sae_splice
from interp.sites import Site


def explained_variance(x: Float[Tensor, "n d"], recon: Float[Tensor, "n d"]) -> float:
    """1 - sum |x - recon|^2 / sum |x - mean(x)|^2 (pooled over all dimensions)."""
    x, recon = x.double(), recon.double()
    total = (x - x.mean(0)).pow(2).sum()
    if total == 0:
        raise ValueError("explained variance is undefined for constant activations")
    return float(1 - (x - recon).pow(2).sum() / total)


@torch.no_grad()
def reconstruction_stats(
    sae: Any, acts: Float[Tensor, "n d"], batch_size: int = 4096
) -> dict[str, Any]:
    """Explained variance, mean L0, relative MSE and dead / live latents of ``sae`` on ``acts``.

    A latent is dead when it fires on none of ``acts``."""
    fired = torch.zeros(sae.cfg.d_sae, dtype=torch.long)
    err = l0 = 0.0
    recons = []
    for start in range(0, acts.shape[0], batch_size):
        x = acts[start : start + batch_size].to(sae.W_dec.device)  # batches go to the SAE
        feats, recon = encode_decode(sae, x)
        fired += (feats > 0).sum(0).cpu()
        l0 += float((feats > 0).sum())
        err += float((x - recon).double().pow(2).sum())
        recons.append(recon.to(acts.device))
    n = acts.shape[0]
    dead = int((fired == 0).sum())
    return {
        "n_tokens": n,
        "explained_variance": explained_variance(acts, torch.cat(recons)),
        "relative_mse": err / float(acts.double().pow(2).sum()),
        "l0": l0 / n,
        "dead_latents": dead,
        "dead_fraction": dead / sae.cfg.d_sae,
        "d_sae": int(sae.cfg.d_sae),
    }


def _batch(encoded: Sequence[tuple[list[int], int]], pad: int) -> tuple[Tensor, Tensor, Tensor]:
    width = max(len(ids) for ids, _ in encoded)
    ids = torch.full((len(encoded), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    scored = torch.zeros_like(ids, dtype=torch.bool)  # next-token targets among kept tokens
    for i, (row, keep_from) in enumerate(encoded):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
        scored[i, max(keep_from, 1) : len(row)] = True
    return ids, mask, scored


def _token_losses(
    logits: Float[Tensor, "b p v"], ids: Int[Tensor, "b p"], scored: Tensor
) -> Tensor:
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    nll = -logp.gather(-1, ids[:, 1:, None])[..., 0]
    return nll[scored[:, 1:]]


def _scored_losses(
    runner: LayerRunner,
    final: Float[Tensor, "b p d"],
    ids: Int[Tensor, "b p"],
    scored: Tensor,
) -> Float[Tensor, " n"]:
    """:func:`_token_losses` from the residual after the last block, unembedding only the
    positions that predict a scored token."""
    predicts = scored[:, 1:].to(final.device)
    logits = runner.logits(final[:, :-1][predicts])  # (n, vocab)
    logp = torch.log_softmax(logits.float(), dim=-1)
    targets = ids[:, 1:].to(final.device)[predicts]
    return -logp.gather(-1, targets[:, None])[:, 0].cpu()


def _runner_for(backend: Backend, site: Site) -> LayerRunner | None:
    """A layer runner for splicing at ``site`` when it applies (see the module doc)."""
    if backend.name != "torch" or site.kind not in ("resid_pre", "resid_post"):
        return None
    return runner_or_none(backend.loaded)


@torch.no_grad()
def spliced_loss(
    backend: Backend,
    sae: Any,
    site: Site,
    rows: Sequence[TextRow],
    *,
    mean_act: Float[Tensor, " d"],
    max_tokens: int = 256,
    batch_size: int = 8,
) -> dict[str, float]:
    """Mean next-token cross-entropy on the kept tokens of ``rows``: clean, with the SAE
    reconstruction spliced in at ``site``, with the reconstruction plus its error (a check: equals
    clean), and with the site mean-ablated; and the fraction of the loss recovered
    ``(ce_ablated - ce_sae) / (ce_ablated - ce_clean)``."""
    tok = backend.loaded.tokenizer
    edits: dict[str, Edit | None] = {
        "clean": None,
        "sae": sae_splice(sae, with_error=False),
        "sae_plus_error": sae_splice(sae, with_error=True),
        "mean_ablated": lambda x, s: mean_act.to(x.dtype).expand_as(x).clone(),
    }
    losses: dict[str, list[Tensor]] = {k: [] for k in edits}
    device = backend.loaded.device
    runner = _runner_for(backend, site)
    for start in range(0, len(rows), batch_size):
        encoded = [encode_row(tok, r, max_tokens) for r in rows[start : start + batch_size]]
        ids, mask, scored = _batch(encoded, tok.pad_token_id)
        if runner is None:
            for name, fn in edits.items():
                with backend.hooked(edit={site: fn} if fn is not None else None):
                    logits = backend.forward(ids.to(device), mask.to(device)).cpu()
                losses[name].append(_token_losses(logits, ids, scored))
            continue
        h = runner.embed_tokens(ids.to(device))
        prepared = runner.prepare(mask.to(device), h)
        entry = block_after(site)
        below = runner.run(h, prepared, 0, entry)  # the residual at the site, unedited
        for name, fn in edits.items():
            at_site = below if fn is None else fn(below.clone(), site)
            final = runner.run(at_site, prepared, entry)
            losses[name].append(_scored_losses(runner, final, ids, scored))
    ce = {k: float(torch.cat(v).mean()) for k, v in losses.items()}
    gap = ce["mean_ablated"] - ce["clean"]
    return {
        "ce_clean": ce["clean"],
        "ce_sae": ce["sae"],
        "ce_sae_plus_error": ce["sae_plus_error"],
        "ce_mean_ablated": ce["mean_ablated"],
        "ce_increase": ce["sae"] - ce["clean"],
        "loss_recovered": (ce["mean_ablated"] - ce["sae"]) / gap if gap > 0 else float("nan"),
        "n_scored_tokens": int(sum(len(v) for v in losses["clean"])),
    }
