"""Steering sweeps: alpha x layer x direction, with side effects and a random-direction null.

For each setting (a direction, a layer, an alpha) the study rows (:mod:`interp.causal.readouts`) are
scored with the intervention ``add`` (or ``ablate_add``) at that layer's ``resid_post``, every
position. Two engines give the same numbers:

- :func:`run_naive`: one full forward per setting and batch, the edit installed as a hook;
- :func:`run_prefix_reuse`: per batch, the clean residual stream is computed once up to each
  sweep layer (the shared prefix, also reused from one sweep layer to the next); each setting
  then runs only the layers above its layer (:class:`~interp.causal.layer_runner.LayerRunner`), and
  unembeds only the positions that are scored. A prompt's two candidate rows are packed into one
  (:mod:`interp.causal.packing`: the prompt once, each candidate a branch) where the model allows.

:func:`sweep_table` turns per-setting readings into the tidy ``steering_sweep.csv`` table with
item-bootstrap CIs and the null band (2.5-97.5% of the same metric over random directions at the
same layer and alpha); its KL (``kl_first_token``) is taken at the first answer token of the
neutral prompts only. :func:`continuation_kl_table` adds ``kl_continuation``: KL to the unsteered
model over the whole greedy continuation of the neutral prompts (the answer and the tokens after
it, :mod:`interp.causal.damage`), with the same null. Warmth needs generation and is measured by
:func:`warmth_by_setting` (every setting's edits stacked in one batch), for the directions and for a
few of the random ones (its null band, :func:`with_warmth_null`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from interp.causal.arms import WarmthScorer, intervention_edits
from interp.causal.damage import DamageUnits, continuation_units, damage_rows
from interp.causal.inputs import norms_for
from interp.causal.layer_runner import LayerRunner
from interp.causal.packing import batch_rows
from interp.causal.readouts import (
    StudyRows,
    TokenRows,
    build_rows,
    is_neutral,
    logits_of,
    pad_batch,
    read_batch,
    unit_table,
)
from interp.causal.stacked_generation import stacked_greedy
from interp.chat import Message, as_messages
from interp.data.prompt_sets import Prompt
from interp.directions import Direction
from interp.evaluate import conversation
from interp.figures.tables import SCHEMAS
from interp.hooks import get_backend
from interp.hooks.base import Backend
from interp.length_batches import length_batches
from interp.models import LoadedModel
from interp.sites import Site
from interp.stats.bootstrap import group_means
from interp.steer import (
    Intervention,
    Operator,
    PhaseTracker,
    compose,
    edits_for,
    random_directions,
    steered,
)
from interp.warmth.pairs import ReplyTriple
from interp.warmth.stats import mean_ci

SWEEP_COLUMNS = SCHEMAS["steering_sweep"]
SWEEP_METRICS = ("p_agree", "error", "kl", "heldout_loss")
"""Metrics read from the forced-choice and held-out rows (``kl`` becomes ``kl_first_token``)."""
METRIC_NAMES = {"kl": "kl_first_token"}
BASELINE = ("none", -1, 0.0)
Key = tuple[str, int, float]
NullBand = dict[tuple[int, float, str], list[float]]
"""(layer, alpha, metric) -> the metric's mean under each random direction there."""


def band_of(null: Sequence[float]) -> tuple[float, float]:
    """The 2.5th-97.5th percentile of the null's values (NaN, NaN where none was measured)."""
    if not null:
        return (np.nan, np.nan)
    lo, hi = np.quantile(np.asarray(null, dtype=float), [0.025, 0.975])
    return (float(lo), float(hi))


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
    """Per setting: summed target log-probability per row and KL per KL row (vs the baseline),
    gathered batch by batch with the rows each batch held, returned in row order."""

    logprob_sum: dict[Key, list[tuple[np.ndarray, np.ndarray]]]
    kl: dict[Key, list[tuple[np.ndarray, np.ndarray]]]

    @classmethod
    def empty(cls) -> Readings:
        return cls({}, {})

    def add(
        self,
        key: Key,
        logprob_sum: torch.Tensor,
        kl: torch.Tensor,
        rows: Sequence[int],
        kl_rows: Sequence[int],
    ) -> None:
        """One batch's readings: ``rows`` are the rows it held (in its order), ``kl_rows`` its
        rows that keep a distribution (in the same order)."""
        self.logprob_sum.setdefault(key, []).append((np.asarray(rows), logprob_sum.numpy()))
        self.kl.setdefault(key, []).append((np.asarray(kl_rows, dtype=int), kl.numpy()))

    def arrays(self, key: Key) -> tuple[np.ndarray, np.ndarray]:
        """``(logprob_sum per row, kl per KL row)``, both in row order."""

        def in_order(parts: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
            index = np.concatenate([i for i, _ in parts])
            values = np.concatenate([v for _, v in parts])
            return values[np.argsort(index, kind="stable")]

        return in_order(self.logprob_sum[key]), in_order(self.kl[key])

    def measured(self) -> list[Key]:
        return list(self.logprob_sum)


def _batches(rows: TokenRows, batch_size: int) -> list[tuple[list[int], list[int], TokenRows]]:
    """``(rows, KL rows, the rows themselves)`` per batch: rows of similar length together
    (:mod:`interp.length_batches`), a prompt's candidate rows (one prompt, so one packed row)
    in one batch."""
    groups = [tuple(ids[: s + 1]) for ids, s in zip(rows.ids, rows.start, strict=True)]
    out = []
    for members in length_batches([len(r) for r in rows.ids], batch_size, groups=groups):
        kl_rows = [r for r in members if rows.keep_dist[r]]
        out.append((members, kl_rows, rows.subset(members)))
    return out


def run_prefix_reuse(
    loaded: object,
    rows: TokenRows,
    settings: Sequence[Setting],
    norms: dict[int, float],
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
    pack: bool = True,
    share_prefix: bool = True,
) -> Readings:
    """Readings of every setting (and of the unedited model, key :data:`BASELINE`), running the
    layers below each sweep layer once per batch. ``pack``: a prompt's candidate rows share one
    packed row where the model allows (:mod:`interp.causal.packing`); ``batch_size`` counts
    unpacked rows. ``share_prefix``: the tokens every row starts with (the chat template's
    system header) run once, and once per setting above its layer under its edit
    (:class:`~interp.causal.layer_runner.PrefixStates`), where the model allows."""
    runner = LayerRunner(loaded)
    by_layer: dict[int, list[Setting]] = {}
    for s in settings:
        by_layer.setdefault(s.layer, []).append(s)
    edits = {
        s.key: edits_for(s.intervention(), norms)[Site(s.layer, "resid_post")] for s in settings
    }
    tokens = rows.shared_prefix() if share_prefix and runner.can_pack else ()
    prefix = runner.prefix_states(tokens) if tokens else None
    rows = rows.after(len(tokens))
    edited_prefix = {
        s.key: None
        if prefix is None
        else runner.edited_prefix(prefix, s.layer + 1, edits[s.key], Site(s.layer, "resid_post"))
        for s in settings
    }
    pad = loaded.tokenizer.pad_token_id  # type: ignore[attr-defined]
    out = Readings.empty()
    with torch.no_grad():
        for members, kl_rows, batch in _batches(rows, batch_size):
            device = loaded.device  # type: ignore[attr-defined]
            # a prompt's candidates share one row where the model allows
            ids, mask, g, packing = batch_rows(batch, pad, device, pack and runner.can_pack)
            h = runner.embed_tokens(ids)
            prep = runner.prepare(mask, h, packing, prefix)
            clean, done = {}, 0
            for layer in sorted(by_layer):
                h = runner.run(h, prep, done, layer + 1, prefix=prefix)
                clean[layer], done = h, layer + 1
            final = runner.run(h, prep, done, prefix=prefix)
            base = read_batch(runner.logits_at(final), g)
            out.add(BASELINE, base.logprob_sum, base.kl, members, kl_rows)
            for layer, group in by_layer.items():
                site = Site(layer, "resid_post")
                for s in group:
                    edited = edits[s.key](clean[layer].clone(), site)
                    f = runner.run(edited, prep, layer + 1, prefix=edited_prefix[s.key])
                    r = read_batch(runner.logits_at(f), g, base.kl_logp)
                    out.add(s.key, r.logprob_sum, r.kl, members, kl_rows)
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
        for members, kl_rows, batch in _batches(rows, batch_size):
            ids, mask, g = pad_batch(batch, pad, backend.loaded.device)
            logits = backend.forward(ids, mask)
            base = read_batch(logits_of(logits), g)
            out.add(BASELINE, base.logprob_sum, base.kl, members, kl_rows)
            for s in settings:
                with steered(backend, [s.intervention()], norms, phase="forward"):
                    logits = backend.forward(ids, mask)
                r = read_batch(logits_of(logits), g, base.kl_logp)
                out.add(s.key, r.logprob_sum, r.kl, members, kl_rows)
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
    direction ``none`` at layer -1, alpha 0. Null columns are NaN where no random setting ran
    at that layer and alpha. Metrics: ``p_agree``, ``error``, ``kl_first_token`` (KL to the
    unsteered model at the first answer token of neutral prompts), ``heldout_loss``."""
    null_means: NullBand = {}
    for s in null_settings:
        for row in _summaries(study, readings, s.key, 2, seed).itertuples():
            null_means.setdefault((s.layer, float(s.alpha), str(row.metric)), []).append(
                float(row.mean)
            )
    records = []
    for key in [BASELINE, *dict.fromkeys(s.key for s in settings)]:
        name, layer, alpha = key
        for row in _summaries(study, readings, key, n_boot, seed).itertuples():
            lo, hi = band_of(null_means.get((layer, alpha, str(row.metric)), []))
            records.append(
                {
                    "direction": name,
                    "layer": layer,
                    "alpha": alpha,
                    "metric": METRIC_NAMES.get(str(row.metric), row.metric),
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
    *,
    max_new_tokens: int,
    max_rows: int = 64,
    n_boot: int = 1000,
    seed: int = 0,
    include_baseline: bool = True,
) -> pd.DataFrame:
    """Warmth of greedy replies under each setting (all positions, prompt and generated):
    ``score`` maps replies to a warmth score each (e.g. the embedding classifier's P(warm)).
    The settings' edit sets are stacked in each batch, at most ``max_rows`` rows
    (:func:`interp.causal.stacked_generation.stacked_greedy`).
    Rows as :data:`SWEEP_COLUMNS` with metric ``warmth`` (null columns NaN), plus ``replies``."""
    todo: list[tuple[Key, list[Intervention]]] = [(BASELINE, [])] if include_baseline else []
    todo += [(s.key, [s.intervention()]) for s in settings]
    edit_sets = [
        compose(edits_for(iv, norms, PhaseTracker("generate")) for iv in ivs) for _, ivs in todo
    ]
    all_replies = stacked_greedy(backend, conversations, edit_sets, max_new_tokens, max_rows)
    records = []
    for (key, _), replies in zip(todo, all_replies, strict=True):
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


def _label(key: Key) -> str:
    return f"{key[0]}|{key[1]}|{key[2]!r}"


def continuation_kl_units(
    backend: Backend,
    prompts: Sequence[Prompt],
    system: str | None,
    settings: Sequence[Setting],
    norms: dict[int, float],
    *,
    max_new_tokens: int,
    batch_size: int = 8,
) -> pd.DataFrame:
    """KL(unsteered || steered) over the unsteered model's greedy continuation (``max_new_tokens``
    tokens: the answer and what follows) of each neutral prompt, averaged over its tokens, for
    the unedited model (:data:`BASELINE`, 0 by construction) and every setting: rows
    ``direction, layer, alpha, item_id, prompt_id, value``. Reuses
    :func:`interp.causal.damage.continuation_units` and :func:`~interp.causal.damage.damage_rows`.
    """
    neutral = [p for p in prompts if is_neutral(p)]
    if not neutral:
        raise ValueError("continuation KL needs neutral prompts (unmodified, no belief)")
    units = continuation_units(
        backend,
        [(p.prompt_id, conversation(p, system)) for p in neutral],
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
    )
    keys = {_label(BASELINE): BASELINE}
    edit_sets: dict[str, list[dict]] = {_label(BASELINE): [{}]}
    for s in settings:
        keys[_label(s.key)] = s.key
        edit_sets[_label(s.key)] = [intervention_edits([s.intervention()], norms)]
    empty = DamageUnits((), (), ())
    rows = damage_rows(backend, edit_sets, units, empty, batch_size=batch_size)
    item = {p.prompt_id: p.item_id for p in neutral}
    key = rows["label"].map(keys)
    return pd.DataFrame(
        {
            "direction": [k[0] for k in key],
            "layer": [k[1] for k in key],
            "alpha": [k[2] for k in key],
            "item_id": rows["unit_id"].map(item),
            "prompt_id": rows["unit_id"],
            "value": rows["value"],
        }
    )


def continuation_kl_table(
    units: pd.DataFrame,
    settings: Sequence[Setting],
    null_settings: Sequence[Setting] = (),
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """``kl_continuation`` rows (:data:`SWEEP_COLUMNS`) from :func:`continuation_kl_units`: the
    unedited model and each setting with item-bootstrap CIs, the null band of the random
    settings at the same layer and alpha (NaN where none ran)."""
    by_key = {k: g for k, g in units.groupby(["direction", "layer", "alpha"], sort=False)}
    null: NullBand = {}
    for s in null_settings:
        null.setdefault((s.layer, float(s.alpha), "kl_continuation"), []).append(
            float(by_key[s.key]["value"].mean())
        )
    records = []
    for key in [BASELINE, *dict.fromkeys(s.key for s in settings)]:
        est = group_means(by_key[key], "value", "item_id", seed=seed, n_boot=n_boot).iloc[0]
        lo, hi = band_of(null.get((key[1], key[2], "kl_continuation"), []))
        records.append(
            {
                "direction": key[0],
                "layer": key[1],
                "alpha": key[2],
                "metric": "kl_continuation",
                "mean": float(est["mean"]),
                "ci_low": float(est["ci_low"]),
                "ci_high": float(est["ci_high"]),
                "null_low": lo,
                "null_high": hi,
            }
        )
    return pd.DataFrame(records, columns=list(SWEEP_COLUMNS))


def with_warmth_null(warmth: pd.DataFrame, null: pd.DataFrame) -> pd.DataFrame:
    """``warmth`` rows (:func:`warmth_by_setting` of the directions) with ``null_low`` /
    ``null_high`` from the warmth of random directions (``null``: :func:`warmth_by_setting` of
    the random settings) at the same layer and alpha; NaN where none ran."""
    means: NullBand = {}
    for r in null.itertuples():
        means.setdefault((int(r.layer), float(r.alpha), "warmth"), []).append(float(r.mean))
    out = warmth.copy()
    bands = [
        band_of(means.get((int(r.layer), float(r.alpha), "warmth"), [])) for r in out.itertuples()
    ]
    out["null_low"] = [b[0] for b in bands]
    out["null_high"] = [b[1] for b in bands]
    return out


@dataclass
class SweepResult:
    """The sweep's tidy table, the warmth replies (None without warmth), the norms used, and how
    many random directions the warmth null has (0 without warmth)."""

    table: pd.DataFrame
    replies: pd.DataFrame | None
    norms: dict[int, float]
    n_settings: int
    n_null: int
    n_warmth_null: int = 0


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
    warmth_random: int = 3,
) -> SweepResult:
    """Steer ``loaded`` (under ``system``) with every direction x layer x alpha, and
    ``n_random`` random directions like the first direction at ``null_alphas``; read the study
    rows of ``prompts`` and the first 16 held-out triples, and the KL over the unsteered greedy
    continuation (``max_new_tokens`` tokens) of the neutral prompts; warmth of greedy replies to
    ``n_requests`` held-out requests when ``warmth`` is given, for the directions and for the
    first ``warmth_random`` random directions at ``null_alphas`` (the warmth null).
    ``triples`` = (train, held-out): the residual norms come from the training triples."""
    train, held = triples
    backend = get_backend(loaded, "torch")
    norms = norms_for(backend, train, layers)
    study = build_rows(loaded.tokenizer, prompts, held[:16], system=system)
    settings = grid(directions, layers, alphas, op)
    randoms = random_directions(directions[0], n_random, seed=seed)
    nulls = grid(randoms, layers, null_alphas, op)
    readings = run_prefix_reuse(loaded, study.rows, settings + nulls, norms, batch_size=batch_size)
    table = sweep_table(study, readings, settings, nulls, n_boot=n_boot, seed=seed)
    kl_units = continuation_kl_units(
        backend,
        prompts,
        system,
        settings + nulls,
        norms,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
    )
    kl = continuation_kl_table(kl_units, settings, nulls, n_boot=n_boot, seed=seed)
    table = pd.concat([table, kl], ignore_index=True)
    replies, n_warmth_null = None, 0
    if warmth is not None:
        convs = [tuple(as_messages(t.request, system=system)) for t in held[:n_requests]]
        w = warmth_by_setting(
            backend,
            convs,
            settings,
            norms,
            warmth,
            max_new_tokens=max_new_tokens,
            n_boot=n_boot,
            seed=seed,
        )
        replies = w[["direction", "layer", "alpha", "replies"]].explode("replies")
        n_warmth_null = min(warmth_random, n_random)
        null_settings = grid(randoms[:n_warmth_null], layers, null_alphas, op)
        w_null = warmth_by_setting(
            backend,
            convs,
            null_settings,
            norms,
            warmth,
            max_new_tokens=max_new_tokens,
            n_boot=2,
            seed=seed,
            include_baseline=False,
        )
        w = with_warmth_null(w.drop(columns="replies"), w_null)
        table = pd.concat([table, w], ignore_index=True)
    return SweepResult(table, replies, norms, len(settings), len(nulls), n_warmth_null)
