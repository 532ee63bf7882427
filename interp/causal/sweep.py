"""Steering sweeps: alpha x layer x direction, with side effects and a random-direction null.

For each setting (a direction, a layer, an alpha) the study rows (:mod:`interp.causal.readouts`) are
scored with the intervention ``add`` (or ``ablate_add``) at that layer's ``resid_post``, every
position. Two engines give the same numbers:

- :func:`run_naive`: one full forward per setting and batch, the edit installed as a hook;
- :func:`run_prefix_reuse`: per batch, the clean residual stream is computed once up to each
  sweep layer (the shared prefix, also reused from one sweep layer to the next); each setting
  then runs only the layers above its layer (:class:`~interp.causal.layer_runner.LayerRunner`), and
  unembeds only the positions that are scored.

:func:`sweep_table` turns per-setting readings into the tidy ``steering_sweep.csv`` table with
item-bootstrap CIs and the null band (2.5-97.5% of the same metric over random directions at the
same layer and alpha). Warmth needs generation and is measured by :func:`warmth_by_setting`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from interp.causal.arms import WarmthScorer
from interp.causal.inputs import norms_for
from interp.causal.layer_runner import LayerRunner
from interp.causal.readouts import (
    StudyRows,
    TokenRows,
    build_rows,
    logits_of,
    pad_batch,
    read_batch,
    unit_table,
)
from interp.chat import Message, as_messages
from interp.data.prompt_sets import Prompt
from interp.directions import Direction
from interp.figures.tables import SCHEMAS
from interp.generate import SamplingConfig, generate_replies
from interp.hooks import get_backend
from interp.hooks.base import Backend
from interp.models import LoadedModel
from interp.sites import Site
from interp.stats.bootstrap import group_means
from interp.steer import Intervention, Operator, edits_for, random_directions, steered
from interp.warmth.pairs import ReplyTriple
from interp.warmth.stats import mean_ci

SWEEP_COLUMNS = SCHEMAS["steering_sweep"]
SWEEP_METRICS = ("p_agree", "error", "kl", "heldout_loss")
BASELINE = ("none", -1, 0.0)
Key = tuple[str, int, float]


@dataclass(frozen=True)
class Setting:
    """One cell of a sweep."""

    direction: Direction
    layer: int
    alpha: float
    op: Operator = "add"

    @property
    def key(self) -> Key:
        return (self.direction.name, self.layer, float(self.alpha))

    def intervention(self) -> Intervention:
        return Intervention(self.op, self.direction, (self.layer,), alpha=self.alpha)


def grid(
    directions: Sequence[Direction],
    layers: Sequence[int],
    alphas: Sequence[float],
    op: Operator = "add",
) -> list[Setting]:
    """Every (direction, layer, alpha) combination."""
    return [Setting(d, layer, a, op) for d in directions for layer in layers for a in alphas]


@dataclass
class Readings:
    """Per setting: summed target log-probability per row and KL per KL row (vs the baseline)."""

    logprob_sum: dict[Key, list[np.ndarray]]
    kl: dict[Key, list[np.ndarray]]

    @classmethod
    def empty(cls) -> Readings:
        return cls({}, {})

    def add(self, key: Key, logprob_sum: torch.Tensor, kl: torch.Tensor) -> None:
        self.logprob_sum.setdefault(key, []).append(logprob_sum.numpy())
        self.kl.setdefault(key, []).append(kl.numpy())

    def arrays(self, key: Key) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self.logprob_sum[key]), np.concatenate(self.kl[key])

    def measured(self) -> list[Key]:
        return list(self.logprob_sum)


def _batches(rows: TokenRows, batch_size: int) -> list[TokenRows]:
    return [
        rows.subset(range(i, min(i + batch_size, len(rows))))
        for i in range(0, len(rows), batch_size)
    ]


def run_prefix_reuse(
    loaded: object,
    rows: TokenRows,
    settings: Sequence[Setting],
    norms: dict[int, float],
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> Readings:
    """Readings of every setting (and of the unedited model, key :data:`BASELINE`), running the
    layers below each sweep layer once per batch."""
    runner = LayerRunner(loaded)
    by_layer: dict[int, list[Setting]] = {}
    for s in settings:
        by_layer.setdefault(s.layer, []).append(s)
    edits = {
        s.key: edits_for(s.intervention(), norms)[Site(s.layer, "resid_post")] for s in settings
    }
    pad = loaded.tokenizer.pad_token_id  # type: ignore[attr-defined]
    out = Readings.empty()
    with torch.no_grad():
        for batch in _batches(rows, batch_size):
            ids, mask, g = pad_batch(batch, pad, loaded.device)  # type: ignore[attr-defined]
            h = runner.embed_tokens(ids)
            prep = runner.prepare(mask, h)
            clean, done = {}, 0
            for layer in sorted(by_layer):
                h = runner.run(h, prep, done, layer + 1)
                clean[layer], done = h, layer + 1
            final = runner.run(h, prep, done)
            base = read_batch(runner.logits_at(final), g)
            out.add(BASELINE, base.logprob_sum, base.kl)
            for layer, group in by_layer.items():
                site = Site(layer, "resid_post")
                for s in group:
                    edited = edits[s.key](clean[layer].clone(), site)
                    f = runner.run(edited, prep, layer + 1)
                    r = read_batch(runner.logits_at(f), g, base.kl_logp)
                    out.add(s.key, r.logprob_sum, r.kl)
            if progress is not None:
                progress(len(batch))
    return out


def run_naive(
    backend: Backend,
    rows: TokenRows,
    settings: Sequence[Setting],
    norms: dict[int, float],
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> Readings:
    """The reference: a full forward per setting and batch under :func:`~interp.steer.steered`."""
    pad = backend.loaded.tokenizer.pad_token_id
    out = Readings.empty()
    with torch.no_grad():
        for batch in _batches(rows, batch_size):
            ids, mask, g = pad_batch(batch, pad, backend.loaded.device)
            logits = backend.forward(ids, mask)
            base = read_batch(logits_of(logits), g)
            out.add(BASELINE, base.logprob_sum, base.kl)
            for s in settings:
                with steered(backend, [s.intervention()], norms, phase="forward"):
                    logits = backend.forward(ids, mask)
                r = read_batch(logits_of(logits), g, base.kl_logp)
                out.add(s.key, r.logprob_sum, r.kl)
            if progress is not None:
                progress(len(batch))
    return out


def _summaries(
    study: StudyRows, readings: Readings, key: Key, n_boot: int, seed: int
) -> pd.DataFrame:
    lp, kl = readings.arrays(key)
    units = unit_table(study, lp, kl)
    units = units[units["metric"].isin(SWEEP_METRICS)]
    return group_means(units, "value", "item_id", by=["metric"], seed=seed, n_boot=n_boot)


def sweep_table(
    study: StudyRows,
    readings: Readings,
    settings: Sequence[Setting],
    null_settings: Sequence[Setting] = (),
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Tidy ``steering_sweep.csv`` rows (:data:`SWEEP_COLUMNS`); the unedited model appears as
    direction ``none`` at layer -1, alpha 0. Null columns are NaN without random settings."""
    null_means: dict[tuple[int, float, str], list[float]] = {}
    for s in null_settings:
        for row in _summaries(study, readings, s.key, 2, seed).itertuples():
            null_means.setdefault((s.layer, float(s.alpha), str(row.metric)), []).append(
                float(row.mean)
            )
    records = []
    for key in [BASELINE, *dict.fromkeys(s.key for s in settings)]:
        name, layer, alpha = key
        for row in _summaries(study, readings, key, n_boot, seed).itertuples():
            null = null_means.get((layer, alpha, str(row.metric)), [])
            lo, hi = np.quantile(null, [0.025, 0.975]) if null else (np.nan, np.nan)
            records.append(
                {
                    "direction": name,
                    "layer": layer,
                    "alpha": alpha,
                    "metric": row.metric,
                    "mean": row.mean,
                    "ci_low": row.ci_low,
                    "ci_high": row.ci_high,
                    "null_low": lo,
                    "null_high": hi,
                }
            )
    return pd.DataFrame(records, columns=list(SWEEP_COLUMNS))


def warmth_by_setting(
    backend: Backend,
    conversations: Sequence[Sequence[Message]],
    settings: Sequence[Setting],
    norms: dict[int, float],
    score: Callable[[list[str]], np.ndarray],
    sampling: SamplingConfig,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    include_baseline: bool = True,
) -> pd.DataFrame:
    """Warmth of greedy/sampled replies under each setting (all positions, prompt and generated):
    ``score`` maps replies to a warmth score each (e.g. the embedding classifier's P(warm)).
    Rows as :data:`SWEEP_COLUMNS` with metric ``warmth`` (null columns NaN), plus ``replies``."""
    todo: list[tuple[Key, list[Intervention]]] = [(BASELINE, [])] if include_baseline else []
    todo += [(s.key, [s.intervention()]) for s in settings]
    records = []
    for key, ivs in todo:
        with steered(backend, ivs, norms, phase="generate"):
            replies = generate_replies(backend, conversations, sampling)
        est = mean_ci(np.asarray(score(replies), dtype=float), n_boot=n_boot, seed=seed)
        records.append(
            {
                "direction": key[0],
                "layer": key[1],
                "alpha": key[2],
                "metric": "warmth",
                "mean": est.value,
                "ci_low": est.lo,
                "ci_high": est.hi,
                "null_low": np.nan,
                "null_high": np.nan,
                "replies": replies,
            }
        )
    return pd.DataFrame(records)


@dataclass
class SweepResult:
    """The sweep's tidy table, the warmth replies (None without warmth) and the norms used."""

    table: pd.DataFrame
    replies: pd.DataFrame | None
    norms: dict[int, float]
    n_settings: int
    n_null: int


def steering_sweep(
    loaded: LoadedModel,
    system: str | None,
    prompts: Sequence[Prompt],
    triples: tuple[Sequence[ReplyTriple], Sequence[ReplyTriple]],
    directions: Sequence[Direction],
    *,
    layers: Sequence[int],
    alphas: Sequence[float],
    op: Operator,
    null_alphas: Sequence[float],
    n_random: int,
    seed: int,
    batch_size: int,
    n_boot: int,
    warmth: WarmthScorer | None = None,
    n_requests: int = 8,
    max_new_tokens: int = 32,
) -> SweepResult:
    """Steer ``loaded`` (under ``system``) with every direction x layer x alpha, and
    ``n_random`` random directions like the first direction at ``null_alphas``; read the study
    rows of ``prompts`` and the first 16 held-out triples; warmth of greedy replies to
    ``n_requests`` held-out requests when ``warmth`` is given. ``triples`` = (train, held-out):
    the residual norms come from the training triples."""
    train, held = triples
    backend = get_backend(loaded, "torch")
    norms = norms_for(backend, train, layers)
    study = build_rows(loaded.tokenizer, prompts, held[:16], system=system)
    settings = grid(directions, layers, alphas, op)
    nulls = grid(random_directions(directions[0], n_random, seed=seed), layers, null_alphas, op)
    readings = run_prefix_reuse(loaded, study.rows, settings + nulls, norms, batch_size=batch_size)
    table = sweep_table(study, readings, settings, nulls, n_boot=n_boot, seed=seed)
    replies = None
    if warmth is not None:
        convs = [tuple(as_messages(t.request, system=system)) for t in held[:n_requests]]
        sampling = SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.0)
        w = warmth_by_setting(
            backend, convs, settings, norms, warmth, sampling, n_boot=n_boot, seed=seed
        )
        replies = w[["direction", "layer", "alpha", "replies"]].explode("replies")
        table = pd.concat([table, w.drop(columns="replies")], ignore_index=True)
    return SweepResult(table, replies, norms, len(settings), len(nulls))
