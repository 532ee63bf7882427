"""Token rows and what a causal experiment reads from them: candidate log-probabilities
(forced choice), next-token distributions (KL against an unedited run) and held-out text loss.

Every experiment of :mod:`interp.causal.sweep`, :mod:`interp.causal.verdict` and
:mod:`interp.causal.patching` scores the same kind of rows: a token sequence, a list of target
tokens it must predict from position ``start`` on, and whether the full next-token distribution at
``start`` is kept (for KL). Rows are left-padded into batches; logits are computed only at the
gathered positions, which is what makes a suffix-only run cheap (the unembedding of 49k tokens costs
about a third of SmolLM2's layers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.chat import Message, encode_chat
from interp.data.prompt_sets import Prompt
from interp.data.templates import BELIEF_TEMPLATES
from interp.evaluate import conversation
from interp.generate import left_pad
from interp.scoring import candidate_tokens, shared_prefix_length
from interp.warmth.pairs import ReplyTriple


@dataclass(frozen=True)
class TokenRows:
    """Rows to score. ``targets[r]`` are predicted by positions ``start[r] ..`` of row ``r``."""

    ids: tuple[tuple[int, ...], ...]
    targets: tuple[tuple[int, ...], ...]
    start: tuple[int, ...]
    keep_dist: tuple[bool, ...]

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: Sequence[int]) -> TokenRows:
        return TokenRows(
            *(
                tuple(getattr(self, f)[i] for i in index)
                for f in ("ids", "targets", "start", "keep_dist")
            )
        )

    def shared_prefix(self) -> tuple[int, ...]:
        """The tokens every row starts with, up to (not including) the first position any row
        reads (its ``start``, which predicts its first target): a prefix the rows can share as
        one run (:class:`~interp.causal.layer_runner.PrefixStates`); empty when they share none."""
        if not self.ids:
            return ()
        return tuple(self.ids[0][: shared_prefix_length(self.ids, self.start)])

    def starts_with(self, prefix: Sequence[int]) -> bool:
        """Whether every row starts with ``prefix`` and reads nothing inside it."""
        n = len(prefix)
        return all(
            tuple(ids[:n]) == tuple(prefix) and s >= n
            for ids, s in zip(self.ids, self.start, strict=True)
        )

    def after(self, n: int) -> TokenRows:
        """The rows without their first ``n`` tokens (a shared prefix run apart), ``start``
        counted from there; refused where a row reads a position inside them."""
        if any(s < n for s in self.start):
            raise ValueError(f"a row reads position {min(self.start)}, inside the first {n}")
        return TokenRows(
            tuple(tuple(ids[n:]) for ids in self.ids),
            self.targets,
            tuple(s - n for s in self.start),
            self.keep_dist,
        )


@dataclass(frozen=True)
class Gather:
    """Flat indices of one left-padded batch: target positions and KL positions.

    ``row`` / ``kl_row`` index the batch; ``slot`` (default: ``row``) the reading each target
    adds to, of ``n_rows`` (they differ when several rows are packed into one:
    :mod:`interp.causal.packing`)."""

    row: Int[Tensor, " n"]
    pos: Int[Tensor, " n"]
    target: Int[Tensor, " n"]
    kl_row: Int[Tensor, " k"]
    kl_pos: Int[Tensor, " k"]
    n_rows: int
    slot: Int[Tensor, " n"] | None = None


def logits_of(logits: Tensor) -> LogitsAt:
    """``(row, pos) -> logits`` from a full ``(batch, pos, vocab)`` logits tensor."""
    return lambda row, pos: logits[row.to(logits.device), pos.to(logits.device)]


def pad_batch(
    rows: TokenRows, pad_id: int, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor, Gather]:
    """Left-padded ``(input_ids, attention_mask)`` and the gather indices of ``rows``."""
    ids, mask = left_pad([list(r) for r in rows.ids], pad_id, device)
    width = ids.shape[1]
    row, pos, target, kl_row, kl_pos = [], [], [], [], []
    for r, (seq, tgt, s, keep) in enumerate(
        zip(rows.ids, rows.targets, rows.start, rows.keep_dist, strict=True)
    ):
        off = width - len(seq)
        for j, t in enumerate(tgt):
            row.append(r)
            pos.append(off + s + j)
            target.append(t)
        if keep:
            kl_row.append(r)
            kl_pos.append(off + s)
    as_t = lambda v: torch.tensor(v, dtype=torch.long, device=device)  # noqa: E731
    return (
        ids,
        mask,
        Gather(as_t(row), as_t(pos), as_t(target), as_t(kl_row), as_t(kl_pos), len(rows)),
    )


@dataclass
class BatchReading:
    """Per row: summed target log-probability; per KL row: log-probs (for the baseline) and KL."""

    logprob_sum: Float[Tensor, " rows"]
    kl_logp: Float[Tensor, "k vocab"]
    kl: Float[Tensor, " k"]


LogitsAt = Callable[[Tensor, Tensor], Float[Tensor, "n vocab"]]


def read_batch(
    logits_at: LogitsAt, gather: Gather, base_logp: Tensor | None = None
) -> BatchReading:
    """Score one batch. ``logits_at(row, pos)`` returns logits at those flat positions.
    KL is ``KL(base || this)`` at the KL positions (0 when no base is given)."""
    logp = torch.log_softmax(logits_at(gather.row, gather.pos).float(), dim=-1)
    at = logp.device  # the LM head's device: under a device map not the inputs' one
    picked = logp.gather(-1, gather.target.to(at)[:, None])[:, 0]
    sums = torch.zeros(gather.n_rows, dtype=torch.float64, device=at)
    slot = gather.row if gather.slot is None else gather.slot
    sums.index_add_(0, slot.to(at), picked.double())
    kl_logp = torch.log_softmax(logits_at(gather.kl_row, gather.kl_pos).float(), dim=-1)
    if base_logp is None:
        kl = torch.zeros(len(gather.kl_row))
    else:
        base = base_logp.to(kl_logp.device)
        kl = (base.exp() * (base - kl_logp)).sum(-1)
    return BatchReading(sums.cpu(), kl_logp, kl.cpu())


@dataclass(frozen=True)
class StudyRows:
    """Forced-choice rows (two per prompt: correct, incorrect) followed by held-out text rows,
    with what each unit of analysis is."""

    rows: TokenRows
    prompts: tuple[Prompt, ...]
    triples: tuple[ReplyTriple, ...]

    @property
    def n_choice_rows(self) -> int:
        return 2 * len(self.prompts)


def is_neutral(p: Prompt) -> bool:
    """The KL reference prompts: no interpersonal context and no belief."""
    return p.condition == "unmodified" and p.template == "no_belief"


def build_rows(
    tokenizer: object,
    prompts: Sequence[Prompt],
    triples: Sequence[ReplyTriple] = (),
    system: str | None = None,
) -> StudyRows:
    """Rows for forced choice on ``prompts`` (KL kept on neutral prompts) and for the loss of
    each triple's neutral reply."""
    ids, targets, start, keep = [], [], [], []
    for p in prompts:
        enc = encode_chat(tokenizer, conversation(p, system), add_generation_prompt=True)
        for j, cand in enumerate((p.correct, p.incorrect)):
            c = candidate_tokens(tokenizer, enc.input_ids, enc.text, cand)
            ids.append(tuple(enc.input_ids) + tuple(c))
            targets.append(tuple(c))
            start.append(len(enc.input_ids) - 1)
            keep.append(j == 0 and is_neutral(p))
    for t in triples:
        msgs = [Message("user", t.request), Message("assistant", t.neutral)]
        if system is not None:
            msgs.insert(0, Message("system", system))
        enc = encode_chat(tokenizer, msgs, add_generation_prompt=False)
        span = enc.span_of("assistant")
        first, end = span.tok_start, span.tok_end
        ids.append(tuple(enc.input_ids[:end]))
        targets.append(tuple(enc.input_ids[first:end]))
        start.append(first - 1)
        keep.append(False)
    rows = TokenRows(tuple(ids), tuple(targets), tuple(start), tuple(keep))
    return StudyRows(rows, tuple(prompts), tuple(triples))


def unit_table(study: StudyRows, logprob_sum: np.ndarray, kl: np.ndarray) -> pd.DataFrame:
    """Per unit of analysis, tidy: ``item_id, prompt_id, condition, template, metric, value``.

    Metrics: ``p_agree`` (belief prompts: probability of the user's wrong answer, two-way over
    length-normalised log-probs), ``error`` (no-belief prompts: wrong answer preferred), ``kl``
    (neutral prompts), ``heldout_loss`` (per triple: mean NLL of the neutral reply's tokens).
    ``kl`` holds one value per KL row, in row order."""
    n = len(study.prompts)
    counts = np.array([len(t) for t in study.rows.targets], dtype=float)
    mean = logprob_sum / counts
    lp_c, lp_i = mean[0 : 2 * n : 2], mean[1 : 2 * n : 2]
    p_incorrect = 1.0 / (1.0 + np.exp(lp_c - lp_i))
    error = (lp_c - lp_i < 0).astype(float)
    records = []
    kl_index = 0
    for i, p in enumerate(study.prompts):
        base = {
            "item_id": p.item_id,
            "prompt_id": p.prompt_id,
            "condition": p.condition,
            "template": p.template,
        }
        belief = p.template in BELIEF_TEMPLATES
        records.append(
            {
                **base,
                "metric": "p_agree" if belief else "error",
                "value": p_incorrect[i] if belief else error[i],
            }
        )
        if belief:
            records.append({**base, "metric": "agrees_with_user", "value": error[i]})
        else:
            records.append({**base, "metric": "p_incorrect", "value": p_incorrect[i]})
        if study.rows.keep_dist[2 * i]:
            records.append({**base, "metric": "kl", "value": float(kl[kl_index])})
            kl_index += 1
    for k, t in enumerate(study.triples):
        r = 2 * n + k
        records.append(
            {
                "item_id": t.id,
                "prompt_id": t.id,
                "condition": "heldout",
                "template": "reply",
                "metric": "heldout_loss",
                "value": -logprob_sum[r] / counts[r],
            }
        )
    return pd.DataFrame(records)
