"""Activation patching between the original and the warm model, layer by layer.

For a patch ``source->target`` at layer L the target model runs with its ``resid_post`` at L
replaced by the source model's at the same positions, on the same forced-choice rows; the
readout is ``p_incorrect`` (two-way probability of the wrong answer, length-normalised). The
fraction of the gap recovered is a ratio of item-level means,

    recovered = mean(patched - target) / mean(source - target),

with an item-bootstrap CI: 1 means the layer's residual carries the whole difference, 0 none.

Positions: ``last`` patches the last prompt token only (the one predicting the answer);
``all`` patches every position the two runs share. When the two arms differ only by weights (a
LoRA adapter) the rows are identical and ``all`` is every position; when the warm arm is a system
prompt stand-in, the rows share their suffix (user turn, assistant header, answer) and ``all``
patches that suffix, aligned from the end. The clean residuals of both runs are computed once per
batch; each (layer, positions) patch runs only the layers above L (prefix reuse).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from interp.causal.layer_runner import LayerRunner
from interp.causal.readouts import build_rows, pad_batch, read_batch
from interp.data.prompt_sets import Prompt
from interp.figures.tables import SCHEMAS
from interp.length_batches import length_batches
from interp.models import LoadedModel
from interp.stats.bootstrap import cluster_bootstrap

PATCHING_COLUMNS = SCHEMAS["patching"]


@dataclass(frozen=True)
class PatchArm:
    """One side of the patch: a loaded model and the system prompt it is asked under."""

    name: str
    loaded: LoadedModel
    system: str | None = None


def _shared_suffix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def _p_incorrect(lp_sum: np.ndarray, counts: np.ndarray) -> np.ndarray:
    mean = lp_sum / counts
    return 1.0 / (1.0 + np.exp(mean[0::2] - mean[1::2]))


def patch_readings(
    source: PatchArm,
    target: PatchArm,
    prompts: Sequence[Prompt],
    layers: Sequence[int],
    positions: Sequence[str] = ("last", "all"),
    batch_size: int = 8,
) -> dict[tuple[int, str] | str, np.ndarray]:
    """Per-prompt ``p_incorrect`` of the target (``"target"``), the source (``"source"``) and
    each patch ``(layer, positions)``."""
    rows_s = build_rows(source.loaded.tokenizer, prompts, system=source.system).rows
    rows_t = build_rows(target.loaded.tokenizer, prompts, system=target.system).rows
    run_s, run_t = LayerRunner(source.loaded), LayerRunner(target.loaded)
    counts = np.array([len(t) for t in rows_t.targets], dtype=float)
    out: dict[tuple[int, str] | str, list[np.ndarray]] = {}
    pad = target.loaded.tokenizer.pad_token_id
    # prompts of similar length share a batch (both candidate rows of a prompt in it); the
    # readings are put back in row order at the end
    lengths = [max(len(rows_t.ids[2 * i]), len(rows_s.ids[2 * i])) for i in range(len(prompts))]
    order: list[int] = []
    with torch.no_grad():
        for members in length_batches(lengths, batch_size):
            idx = [r for i in members for r in (2 * i, 2 * i + 1)]
            order += idx
            bs, bt = rows_s.subset(idx), rows_t.subset(idx)
            ids_s, mask_s, g_s = pad_batch(bs, pad, source.loaded.device)
            ids_t, mask_t, g_t = pad_batch(bt, pad, target.loaded.device)
            shared = [_shared_suffix(a, b) for a, b in zip(bs.ids, bt.ids, strict=True)]
            # the last prompt token: targets start right after it, so it sits len(targets) from the
            # end
            last_from_end = [len(t) + 1 for t in bt.targets]
            if any(s < k for s, k in zip(shared, last_from_end, strict=True)):
                raise ValueError(
                    "source and target rows do not share the prompt's last token and answer"
                )
            h_s, h_t = run_s.embed_tokens(ids_s), run_t.embed_tokens(ids_t)
            prep_s, prep_t = run_s.prepare(mask_s, h_s), run_t.prepare(mask_t, h_t)
            clean_s, clean_t, done = {}, {}, 0
            for layer in sorted(layers):
                h_s, h_t = (
                    run_s.run(h_s, prep_s, done, layer + 1),
                    run_t.run(h_t, prep_t, done, layer + 1),
                )
                clean_s[layer], clean_t[layer], done = h_s, h_t, layer + 1
            fin_s, fin_t = run_s.run(h_s, prep_s, done), run_t.run(h_t, prep_t, done)
            for key, fin, g, runner in (
                ("source", fin_s, g_s, run_s),
                ("target", fin_t, g_t, run_t),
            ):
                out.setdefault(key, []).append(
                    read_batch(runner.logits_at(fin), g).logprob_sum.numpy()
                )
            ws, wt = ids_s.shape[1], ids_t.shape[1]
            for layer in sorted(layers):
                for pos in positions:
                    h = clean_t[layer].clone()
                    for r in range(len(bt)):
                        k = last_from_end[r] if pos == "last" else shared[r]
                        if pos == "last":
                            h[r, wt - k] = clean_s[layer][r, ws - k]
                        else:
                            h[r, wt - k :] = clean_s[layer][r, ws - k :]
                    fin = run_t.run(h, prep_t, layer + 1)
                    out.setdefault((layer, pos), []).append(
                        read_batch(run_t.logits_at(fin), g_t).logprob_sum.numpy()
                    )
    back = np.argsort(np.asarray(order), kind="stable")
    return {k: _p_incorrect(np.concatenate(v)[back], counts) for k, v in out.items()}


def recovered_table(
    readings: dict[tuple[int, str] | str, np.ndarray],
    prompts: Sequence[Prompt],
    patch: str,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Tidy ``patching.csv`` rows (:data:`PATCHING_COLUMNS`) for one patch direction."""
    items = [p.item_id for p in prompts]
    records = []
    for key, patched in readings.items():
        if isinstance(key, str):
            continue
        layer, pos = key
        df = pd.DataFrame(
            {
                "item_id": items,
                "gain": patched - readings["target"],
                "gap": readings["source"] - readings["target"],
            }
        )

        def ratio(d: pd.DataFrame) -> float:
            gap = d["gap"].mean()
            return float(d["gain"].mean() / gap) if gap != 0 else float("nan")

        res = cluster_bootstrap(df, ratio, "item_id", seed=seed, n_boot=n_boot)
        records.append(
            {
                "layer": layer,
                "positions": pos,
                "patch": patch,
                "recovered": res.estimate,
                "ci_low": res.ci_low,
                "ci_high": res.ci_high,
                "n_items": res.n_items,
            }
        )
    return (
        pd.DataFrame(records, columns=list(PATCHING_COLUMNS))
        .sort_values(["positions", "layer"])
        .reset_index(drop=True)
    )


def patch_both_ways(
    original: PatchArm,
    warm: PatchArm,
    prompts: Sequence[Prompt],
    layers: Sequence[int],
    *,
    batch_size: int,
    n_boot: int,
    seed: int,
) -> pd.DataFrame:
    """Patch original -> warm and warm -> original at every layer in ``layers`` (last token and
    all shared positions): the fraction of the gap recovered, one table
    (:data:`PATCHING_COLUMNS`)."""
    tables = []
    for src, tgt in ((original, warm), (warm, original)):
        readings = patch_readings(src, tgt, prompts, layers, batch_size=batch_size)
        tables.append(
            recovered_table(readings, prompts, f"{src.name}->{tgt.name}", n_boot=n_boot, seed=seed)
        )
    return pd.concat(tables, ignore_index=True)
