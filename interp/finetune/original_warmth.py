"""The original model's warmth (epoch 0 of every fine-tune run), measured once and shared.

Every fine-tune run of one base model measures the same thing at epoch 0: the base model's
greedy replies (adapters off) to the same held-out requests, scored by the same instruments
(SocioT with the base model as scorer). The study's warm and cold runs train at once, so the
first run to get there measures it under a lock (:func:`interp.cache.building`) in
``<artifacts>/cache/original-warmth-<key>`` (``replies.csv``, ``scores.csv``, then
``meta.json``, each through a rename) and the other reads it. The key covers the base model's
provenance (weights hash, dtype), the requests (ids and texts), the reply length and batch size,
whether SocioT scores epoch 0, and the instruments' settings (the classifier's training hash,
SocioT's passes, dropout, seed and batch size).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from interp import paths
from interp.artifacts import provenance, sha256_json, write_csv_atomic, write_json_atomic
from interp.cache import building
from interp.finetune import checkpoint_warmth as cw
from interp.finetune.presets import WarmthEvalPlan
from interp.models import LoadedModel
from interp.warmth.pairs import ReplyTriple
from interp.warmth.report import WarmthInstruments


def original_warmth_key(
    base: LoadedModel,
    requests: Sequence[ReplyTriple],
    plan: WarmthEvalPlan,
    instruments: WarmthInstruments,
    sociot: bool,
) -> dict[str, Any]:
    """Everything the epoch-0 replies and scores depend on (the cache folder is its hash)."""
    classifier = instruments.classifier
    model = {k: v for k, v in base.provenance().items() if k not in ("adapter", "adapter_hash")}
    return {
        "version": 1,
        "model": model,
        "requests": [[t.id, t.request] for t in requests],
        "max_new_tokens": plan.max_new_tokens,
        "batch_size": plan.batch_size,
        "instruments": list(instruments.available),
        "classifier": None if classifier is None else classifier.train_hash,
        "sociot": None
        if not sociot
        else [instruments.n_passes, instruments.dropout, instruments.seed, instruments.batch_size],
    }


def original_warmth(
    peft_model: Any,
    base: LoadedModel,
    requests: Sequence[ReplyTriple],
    plan: WarmthEvalPlan,
    instruments: WarmthInstruments,
    sociot: bool,
    folder: Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """``(replies, scores, reused)`` of the original model at epoch 0: replies as
    :func:`~interp.finetune.checkpoint_warmth.checkpoint_replies` writes them (epoch 0.0),
    scores as :func:`~interp.finetune.checkpoint_warmth.score_replies` (SocioT when ``sociot``);
    ``reused``: read from an earlier run's measurement. ``peft_model``: a trained peft model on
    ``base``'s weights, run with its adapters off; ``folder``: where to keep it (default: the
    cache folder of its key)."""
    key = original_warmth_key(base, requests, plan, instruments, sociot)
    if folder is None:
        folder = paths.artifact_dir("cache", f"original-warmth-{sha256_json(key)[:16]}")
    replies_file, scores_file = folder / "replies.csv", folder / "scores.csv"
    with building(folder):
        if (folder / paths.META_FILE).is_file():
            return (
                pd.read_csv(replies_file, keep_default_na=False, dtype={"request_id": str}),
                pd.read_csv(scores_file, dtype={"request_id": str}),
                True,
            )
        folder.mkdir(parents=True, exist_ok=True)
        replies = cw.original_replies(peft_model, base, requests, plan)
        with peft_model.disable_adapter():  # SocioT scores with the original model
            scores = cw.score_replies(replies, instruments, [0.0] if sociot else [])
        # a measurement killed before its meta.json is incomplete: its files are redone
        write_csv_atomic(replies_file, replies, overwrite=True)
        write_csv_atomic(scores_file, scores, overwrite=True)
        write_json_atomic(
            folder / paths.META_FILE, provenance(stage="original-warmth", key=key, n=len(replies))
        )
    return replies, scores, False
