"""The three warmth instruments side by side: tidy score tables, summaries and paired win rates.

- ``sociot``: the paper's SocioT warmth under a configurable scoring LM (:mod:`.sociot`); has an
  SE over dropout passes.
- ``embedding``: P(warm) from a logistic regression on all-MiniLM-L6-v2 embeddings
  (:mod:`.embedding`), trained on the training split of the project's reply triples.
- ``lexical``: warmth markers per 100 words (:mod:`.lexical`).

Every table names the scorer behind each score (column ``scorer``). Win rates are computed on
held-out triples only (:func:`interp.warmth.pairs.split_triples`), which neither the classifier
nor any fine-tuning run has seen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from interp.models import LoadedModel
from interp.warmth.embedding import (
    DEFAULT_C,
    SentenceEncoder,
    WarmthClassifier,
    load_encoder,
    load_or_train,
)
from interp.warmth.lexical import lexical_scores
from interp.warmth.pairs import ReplyTriple, TripleSplit, load_split
from interp.warmth.sociot import DEFAULT_DROPOUT, DEFAULT_PASSES, sociot_scores
from interp.warmth.stats import mean_ci, paired_win_rate

log = logging.getLogger(__name__)

INSTRUMENTS = ("sociot", "embedding", "lexical")
COMPARISONS = (("warm", "neutral"), ("warm", "cold"), ("neutral", "cold"))
SCORE_COLUMNS = ("response_id", "instrument", "score", "se", "scorer")


@dataclass
class WarmthInstruments:
    """What the instruments need: a SocioT scorer, the encoder and the trained classifier.

    An instrument whose parts are ``None`` is skipped (``lexical`` needs nothing).
    ``timings`` collects seconds per instrument of the last :func:`score_responses` call.
    """

    scorer: LoadedModel | None = None
    encoder: SentenceEncoder | None = None
    classifier: WarmthClassifier | None = None
    n_passes: int = DEFAULT_PASSES
    dropout: float | None = DEFAULT_DROPOUT
    seed: int = 0
    batch_size: int = 16
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def available(self) -> tuple[str, ...]:
        """Instruments that can run with the parts given."""
        have = {
            "sociot": self.scorer is not None,
            "embedding": self.encoder is not None and self.classifier is not None,
            "lexical": True,
        }
        return tuple(i for i in INSTRUMENTS if have[i])

    @classmethod
    def load(
        cls,
        scorer: LoadedModel | None = None,
        *,
        split: TripleSplit | None = None,
        embedding: bool = True,
        C: float = DEFAULT_C,
        seed: int = 0,
        n_passes: int = DEFAULT_PASSES,
        dropout: float | None = DEFAULT_DROPOUT,
        batch_size: int = 16,
    ) -> WarmthInstruments:
        """Load the encoder and the persisted classifier (trained on ``split.train``, the
        packaged split by default, retrained and saved if absent); ``scorer`` is the SocioT LM,
        e.g. ``interp.models.load_model()`` (the embedded SmolLM2) or a GPT-2."""
        encoder = classifier = None
        if embedding:
            encoder = load_encoder()
            train = (split or load_split()).train
            classifier = load_or_train(encoder, train, C=C, seed=seed)
        return cls(
            scorer=scorer,
            encoder=encoder,
            classifier=classifier,
            n_passes=n_passes,
            dropout=dropout,
            seed=seed,
            batch_size=batch_size,
        )


def _as_items(responses: Mapping[str, str] | Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    items = list(responses.items()) if isinstance(responses, Mapping) else list(responses)
    ids = [i for i, _ in items]
    if len(set(ids)) != len(ids):
        raise ValueError("response ids must be unique")
    return items


def score_responses(
    responses: Mapping[str, str] | Sequence[tuple[str, str]],
    instruments: WarmthInstruments,
    which: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Score responses (id -> text) with each instrument; a tidy table, one row per
    (response, instrument), columns :data:`SCORE_COLUMNS` (``se`` NaN where none exists)."""
    items = _as_items(responses)
    ids, texts = [i for i, _ in items], [t for _, t in items]
    names = tuple(which) if which is not None else instruments.available
    missing = [n for n in names if n not in instruments.available]
    if missing:
        raise ValueError(
            f"instrument(s) {missing} lack their parts; available: {instruments.available}"
        )
    frames = []
    for name in names:
        t0 = time.perf_counter()
        se = np.full(len(texts), np.nan)
        if name == "sociot":
            assert instruments.scorer is not None
            res = sociot_scores(
                instruments.scorer,
                texts,
                n_passes=instruments.n_passes,
                dropout=instruments.dropout,
                seed=instruments.seed,
                batch_size=instruments.batch_size,
            )
            score, se = res.scores, res.se
            scorer = f"{res.scorer} ({res.n_passes} passes, dropout {res.dropout})"
        elif name == "embedding":
            assert instruments.encoder is not None and instruments.classifier is not None
            score = instruments.classifier.score_texts(instruments.encoder, texts)
            scorer = (
                f"{instruments.encoder.encoder_id} + logreg {instruments.classifier.train_hash[:8]}"
            )
        else:
            score, scorer = lexical_scores(texts), "lexicon per 100 words"
        instruments.timings[name] = time.perf_counter() - t0
        log.info("%s scored %d responses in %.1f s", name, len(texts), instruments.timings[name])
        frames.append(
            pd.DataFrame(
                {"response_id": ids, "instrument": name, "score": score, "se": se, "scorer": scorer}
            )
        )
    return pd.concat(frames, ignore_index=True)[list(SCORE_COLUMNS)]


def summarise(
    scores: pd.DataFrame,
    groups: Mapping[str, str] | None = None,
    *,
    by: str = "group",
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean score per (group, instrument) with a bootstrap 95% CI over responses.

    ``groups`` maps response id -> group (e.g. a fine-tuning checkpoint); otherwise ``scores``
    must hold a column ``by``. Also reports the mean per-response SE (SocioT's pass noise).
    """
    df = scores.copy()
    if groups is not None:
        df[by] = df["response_id"].map(groups)
        if df[by].isna().any():
            raise ValueError("some response ids have no group")
    elif by not in df:
        raise ValueError(f"no column {by!r} and no groups given")
    rows = []
    for (group, name), sub in df.groupby([by, "instrument"], sort=True):
        est = mean_ci(sub["score"].to_numpy(), n_boot=n_boot, seed=seed)
        rows.append(
            {
                by: group,
                "instrument": name,
                "mean": est.value,
                "ci_lo": est.lo,
                "ci_hi": est.hi,
                "n": est.n,
                "mean_se": float(sub["se"].mean()),
                "scorer": sub["scorer"].iloc[0],
            }
        )
    return pd.DataFrame(rows)


def triple_responses(triples: Sequence[ReplyTriple]) -> list[tuple[str, str]]:
    """(``<id>:<tone>``, text) for the neutral, warm and cold reply of each triple."""
    return [
        (f"{t.id}:{tone}", t.reply(tone)) for t in triples for tone in ("neutral", "warm", "cold")
    ]


def win_rates(
    scores: pd.DataFrame,
    triples: Sequence[ReplyTriple],
    *,
    comparisons: Sequence[tuple[str, str]] = COMPARISONS,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Paired win rate per instrument and comparison (``a`` scored above ``b`` for the same
    request; ties count one half) with a bootstrap 95% CI over triples.

    ``scores`` is a :func:`score_responses` table of :func:`triple_responses` ids.
    """
    rows = []
    for name, sub in scores.groupby("instrument", sort=False):
        by_id = dict(zip(sub["response_id"], sub["score"], strict=True))
        for a, b in comparisons:
            xa = [by_id[f"{t.id}:{a}"] for t in triples]
            xb = [by_id[f"{t.id}:{b}"] for t in triples]
            est = paired_win_rate(xa, xb, n_boot=n_boot, seed=seed)
            rows.append(
                {
                    "instrument": name,
                    "comparison": f"{a} > {b}",
                    "win_rate": est.value,
                    "ci_lo": est.lo,
                    "ci_hi": est.hi,
                    "n_pairs": est.n,
                    "scorer": sub["scorer"].iloc[0],
                }
            )
    return pd.DataFrame(rows)


def evaluate_instruments(
    triples: Sequence[ReplyTriple], instruments: WarmthInstruments, *, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every reply of ``triples`` (held-out ones) and return (scores, win rates)."""
    scores = score_responses(triple_responses(triples), instruments)
    return scores, win_rates(scores, triples, seed=seed)
