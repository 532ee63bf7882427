"""Warmth per checkpoint on held-out requests (the paper's Figure 1), with paired differences.

For epoch 0 (the original model: the adapter disabled) and every checkpoint, the model answers
the held-out requests greedily; the replies are scored with the warmth instruments
(:mod:`interp.warmth`). Replies are written per checkpoint as they are made, so an interrupted
measurement resumes. SocioT is scored with the base model (adapter disabled) as the scorer.

Outputs (tidy): ``warmth_by_epoch.csv`` with columns variant (original|warm|cold|distill), epoch
(0 = original), instrument, mean, ci_low, ci_high, n; ``warmth_vs_original.csv`` with the paired
per-request difference checkpoint minus original: variant, epoch, instrument, diff, ci_low,
ci_high, n, win_rate.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from interp.artifacts import ArtifactExistsError, write_csv_atomic
from interp.chat import Message
from interp.finetune.presets import WarmthEvalPlan
from interp.finetune.schedule import checkpoint_name
from interp.generate import SamplingConfig, generate_replies
from interp.hooks import get_backend
from interp.models import LoadedModel
from interp.warmth.pairs import ReplyTriple
from interp.warmth.report import WarmthInstruments, score_responses
from interp.warmth.stats import mean_ci, paired_win_rate

log = logging.getLogger(__name__)

BY_EPOCH_COLUMNS = ("variant", "epoch", "instrument", "mean", "ci_low", "ci_high", "n")
VS_ORIGINAL_COLUMNS = (
    "variant",
    "epoch",
    "instrument",
    "diff",
    "ci_low",
    "ci_high",
    "n",
    "win_rate",
)


def select_requests(held_out: Sequence[ReplyTriple], n: int | None) -> list[ReplyTriple]:
    """The first ``n`` held-out triples taken round-robin over query types (all if None)."""
    by_type: dict[str, list[ReplyTriple]] = {}
    for t in sorted(held_out, key=lambda t: t.id):
        by_type.setdefault(t.query_type, []).append(t)
    order = []
    for k in range(max(len(v) for v in by_type.values())):
        order += [v[k] for _, v in sorted(by_type.items()) if k < len(v)]
    return order if n is None else order[:n]


def _replies_file(folder: Path, epoch: float) -> Path:
    return folder / f"replies-{checkpoint_name(epoch)}.csv"


def _greedy_replies(
    peft_model: Any,
    base: LoadedModel,
    requests: Sequence[ReplyTriple],
    plan: WarmthEvalPlan,
    merged: bool = False,
) -> list[str]:
    """Greedy replies of ``peft_model`` in its current adapter state to ``requests``;
    ``merged``: by a copy with the adapter folded into the weights (the same function, no
    adapter layers to run in every decoding step), the model itself untouched."""
    model = copy.deepcopy(peft_model).merge_and_unload().eval() if merged else peft_model
    wrapped = LoadedModel(base.name, model, base.tokenizer, base.weights_hash)
    sampling = SamplingConfig(
        max_new_tokens=plan.max_new_tokens, temperature=0.0, batch_size=plan.batch_size
    )
    convs = [[Message("user", t.request)] for t in requests]
    return generate_replies(get_backend(wrapped, "torch"), convs, sampling)


def replies_frame(
    epoch: float, requests: Sequence[ReplyTriple], replies: list[str]
) -> pd.DataFrame:
    """The replies of one epoch as rows ``epoch, request_id, query_type, reply``."""
    return pd.DataFrame(
        {
            "epoch": epoch,
            "request_id": [t.id for t in requests],
            "query_type": [t.query_type for t in requests],
            "reply": replies,
        },
        columns=["epoch", "request_id", "query_type", "reply"],
    )


def original_replies(
    peft_model: Any, base: LoadedModel, requests: Sequence[ReplyTriple], plan: WarmthEvalPlan
) -> pd.DataFrame:
    """Epoch 0's rows: greedy replies of the original model (``peft_model`` with its adapters
    off) to ``requests``."""
    peft_model.eval()
    with peft_model.disable_adapter():
        return replies_frame(0.0, requests, _greedy_replies(peft_model, base, requests, plan))


def checkpoint_replies(
    peft_model: Any,
    base: LoadedModel,
    checkpoints: Mapping[float, Path],
    requests: Sequence[ReplyTriple],
    plan: WarmthEvalPlan,
    folder: Path,
    on_epoch: Callable[[float], None] | None = None,
    original: pd.DataFrame | None = None,
    merged: bool = False,
) -> pd.DataFrame:
    """Greedy replies at epoch 0 and each checkpoint, cached as ``folder/replies-epoch-<e>.csv``.

    ``peft_model`` is the trained peft model; each checkpoint's adapter weights are loaded into
    it in turn. ``original``: epoch 0's replies measured already (:func:`original_replies`'
    rows; shared between runs by :mod:`interp.finetune.original_warmth`), written instead of
    generated. ``merged``: each checkpoint answers through a copy of the model with its adapter
    folded in (a second copy of the weights while it answers; faster decoding). Returns a
    table with columns epoch, request_id, query_type, reply.
    """
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    folder.mkdir(parents=True, exist_ok=True)
    if original is not None and original["request_id"].astype(str).tolist() != [
        t.id for t in requests
    ]:
        raise ValueError("the original model's replies answer other requests")
    frames = []
    peft_model.eval()
    for epoch in [0.0, *sorted(checkpoints)]:
        f = _replies_file(folder, epoch)
        if not f.is_file():
            if epoch == 0.0:
                df = (
                    original_replies(peft_model, base, requests, plan)
                    if original is None
                    else replies_frame(0.0, requests, original["reply"].astype(str).tolist())
                )
            else:
                weights = load_file(
                    str(checkpoints[epoch] / "adapter_model.safetensors"), device=str(base.device)
                )
                set_peft_model_state_dict(peft_model, weights)
                df = replies_frame(
                    epoch, requests, _greedy_replies(peft_model, base, requests, plan, merged)
                )
            write_csv_atomic(f, df)
            if on_epoch is not None:
                on_epoch(epoch)
        frames.append(pd.read_csv(f, keep_default_na=False))
    return pd.concat(frames, ignore_index=True)


def score_replies(
    replies: pd.DataFrame,
    instruments: WarmthInstruments,
    sociot_epochs: Sequence[float],
) -> pd.DataFrame:
    """Scores of every reply: embedding and lexical for all, SocioT for ``sociot_epochs``.

    Columns: epoch, request_id, instrument, score, se, scorer.
    """
    rid = [f"{e}|{r}" for e, r in zip(replies["epoch"], replies["request_id"], strict=True)]
    texts = dict(zip(rid, replies["reply"].astype(str), strict=True))
    fast = [i for i in ("embedding", "lexical") if i in instruments.available]
    frames = [score_responses(texts, instruments, which=fast)]
    if "sociot" in instruments.available and sociot_epochs:
        keep = {k: v for k, v in texts.items() if float(k.split("|")[0]) in set(sociot_epochs)}
        frames.append(score_responses(keep, instruments, which=["sociot"]))
    scores = pd.concat(frames, ignore_index=True)
    parts = scores["response_id"].str.split("|", n=1, expand=True)
    scores.insert(0, "epoch", parts[0].astype(float))
    scores.insert(1, "request_id", parts[1])
    return scores.drop(columns="response_id")


def warmth_tables(
    scores: pd.DataFrame, variant: str, *, n_boot: int = 2000, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(warmth_by_epoch, warmth_vs_original) tidy tables from :func:`score_replies` output."""
    by_epoch, vs = [], []
    for (epoch, inst), sub in scores.groupby(["epoch", "instrument"], sort=True):
        est = mean_ci(sub["score"].to_numpy(), n_boot=n_boot, seed=seed)
        by_epoch.append(
            {
                "variant": "original" if epoch == 0 else variant,
                "epoch": float(epoch),
                "instrument": inst,
                "mean": est.value,
                "ci_low": est.lo,
                "ci_high": est.hi,
                "n": est.n,
            }
        )
        if epoch == 0:
            continue
        base = scores[(scores["epoch"] == 0) & (scores["instrument"] == inst)].set_index(
            "request_id"
        )["score"]
        cur = sub.set_index("request_id")["score"]
        common = sorted(set(base.index) & set(cur.index))
        if not common:
            continue
        a, b = cur.loc[common].to_numpy(), base.loc[common].to_numpy()
        d = mean_ci(a - b, n_boot=n_boot, seed=seed)
        win = paired_win_rate(a, b, n_boot=10, seed=seed).value
        vs.append(
            {
                "variant": variant,
                "epoch": float(epoch),
                "instrument": inst,
                "diff": d.value,
                "ci_low": d.lo,
                "ci_high": d.hi,
                "n": d.n,
                "win_rate": win,
            }
        )
    return (
        pd.DataFrame(by_epoch, columns=list(BY_EPOCH_COLUMNS)),
        pd.DataFrame(vs, columns=list(VS_ORIGINAL_COLUMNS)),
    )


def sociot_epochs_for(plan: WarmthEvalPlan, epochs: Sequence[float]) -> list[float]:
    """Epochs SocioT scores under ``plan``: none, epoch 0 and the final one, or all."""
    if plan.sociot_epochs == "none":
        return []
    if plan.sociot_epochs == "all":
        return [0.0, *epochs]
    return [0.0, max(epochs)] if epochs else [0.0]


def write_tables(
    run_dir: Path, by_epoch: pd.DataFrame, vs: pd.DataFrame, scores: pd.DataFrame
) -> None:
    """Write ``warmth_by_epoch.csv``, ``warmth_vs_original.csv`` and ``warmth/scores.csv`` into
    ``run_dir``, each through a temporary file and a rename (refusing to overwrite)."""
    targets = {
        run_dir / "warmth_by_epoch.csv": by_epoch,
        run_dir / "warmth_vs_original.csv": vs,
        run_dir / "warmth" / "scores.csv": scores,
    }
    for f in targets:
        if f.exists():
            raise ArtifactExistsError(f"{f} exists; refusing to overwrite it")
    for f, df in targets.items():
        write_csv_atomic(f, df)
