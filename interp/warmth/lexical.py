"""Lexical warmth markers: a transparent count for quick checks (no model needed).

Every marker is a case-insensitive regular expression in :data:`LEXICON`, grouped by the
features of the paper's warm transformation: empathy, inclusive pronouns, validation, caring
language, informal register, and exclamation marks. The score is the number of marker matches
per 100 words (words = runs of letters, digits and apostrophes; at least one word is assumed),
so short and long replies compare. It rewards surface style only: a cold text can game it and a
warm one written plainly scores low, so treat it as a cross-check of the other two instruments.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float

_WORD = re.compile(r"[A-Za-z0-9']+")

LEXICON: dict[str, tuple[str, ...]] = {
    "empathy": (
        r"\bi (?:completely |totally |really )?(?:understand|hear you|get it)\b",
        r"\bthat (?:sounds|must be|must feel|can be|can feel)\b",
        r"\bit'?s (?:completely |totally |perfectly )?(?:understandable|natural|normal) to\b",
        r"\bi'?m (?:so |really |truly )?sorry\b",
        r"\b(?:how|what) you(?:'re| are) (?:feeling|going through)\b",
        r"\bi can (?:imagine|see how|tell)\b",
        r"\byou(?:'re| are) not alone\b",
        r"\b(?:frustrating|overwhelming|stressful|tough|hard|difficult) (?:time|situation|spot)\b",
    ),
    "inclusive": (
        r"\blet'?s\b",
        r"\btogether\b",
        r"\bwe(?:'ll|'re|'ve)?\b",
        r"\b(?:us|our|ours)\b",
    ),
    "validation": (
        r"\b(?:great|good|excellent|wonderful|fantastic|lovely|fair) "
        r"(?:question|idea|point|thought|choice)\b",
        r"\byou(?:'re| are) (?:absolutely |totally |completely )?right\b",
        r"\b(?:it|that)(?:'s| is) (?:totally |completely |perfectly )?(?:okay|ok|fine|valid)\b",
        r"\bmakes (?:total |perfect |complete )?sense\b",
        r"\b(?:smart|thoughtful|wise|brave|kind) (?:of you|move|question|choice)\b",
        r"\byour (?:feelings|concerns?|curiosity) (?:are|is) (?:valid|understandable)\b",
        r"\bno (?:worries|shame)\b",
    ),
    "caring": (
        r"\b(?:i|we) hope (?:this|that|it|you)\b",
        r"\btake care\b",
        r"\b(?:i'?m|we'?re) (?:always |right )?here (?:for|to)\b",
        r"\bdon'?t hesitate\b",
        r"\b(?:happy|glad|delighted|thrilled) to (?:help|hear|share)\b",
        r"\byou(?:'ve| have) got this\b",
        r"\bgood luck\b",
        r"\b(?:be gentle with|look after|take care of) yourself\b",
        r"\b(?:feel free|reach out)\b",
        r"\bi care\b",
    ),
    "informal": (
        r"\b(?:oh|hey|wow|aw+|yay|ooh|phew|haha)\b",
        r"\b(?:super|totally|awesome|cool|amazing|gonna|wanna|kinda|pretty much)\b",
        r"\b(?:you're|you'll|you've|i'm|i'd|i've|it's|that's|there's|here's|don't|can't|won't)\b",
        r"[\U0001F300-\U0001FAFF\u2600-\u27BF]",
        r":\)|;\)|:D",
    ),
    "exclamation": (r"!",),
}

_COMPILED = {k: tuple(re.compile(p, re.IGNORECASE) for p in v) for k, v in LEXICON.items()}


@dataclass(frozen=True)
class LexicalScore:
    """Marker counts of one text: per category, total, words, and the per-100-words score."""

    counts: dict[str, int]
    n_words: int

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def per_100_words(self) -> float:
        return 100.0 * self.total / max(self.n_words, 1)


def normalise_apostrophes(text: str) -> str:
    """Curly apostrophes to straight ones (markers are written with ``'``)."""
    return text.replace("\u2019", "'").replace("\u2018", "'")


def lexical_markers(text: str) -> LexicalScore:
    """Count every category's markers in ``text`` (non-overlapping matches per pattern)."""
    t = normalise_apostrophes(text)
    counts = {k: sum(len(p.findall(t)) for p in pats) for k, pats in _COMPILED.items()}
    return LexicalScore(counts=counts, n_words=len(_WORD.findall(t)))


def lexical_scores(texts: Sequence[str]) -> Float[np.ndarray, " n"]:
    """Warmth markers per 100 words of each text, shape (n,)."""
    return np.array([lexical_markers(t).per_100_words for t in texts], dtype=np.float64)
