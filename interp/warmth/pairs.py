"""Project-written reply triples (neutral / warm / cold) and their deterministic split.

The triples live in ``interp/resources/replies/triples.jsonl``, one JSON object a line::

    {"id": ..., "query_type": ..., "request": ..., "neutral": ..., "warm": ..., "cold": ...}

``warm`` and ``cold`` rewrite ``neutral`` (same content and facts, different tone), following the
paper's warm transformation and cold control. The same split serves two stages: the embedding
classifier trains on :func:`split_triples`'s training part, and the fine-tuning stage trains on
the training requests and measures warmth on the held-out ones, so neither ever sees the held-out
triples.

The split is stratified by ``query_type`` and decided by a salted sha256 of each id: within each
query type the ids are ordered by their hash and the first ``round(fraction * n)`` are held out.
It depends only on the set of ids (not on file order), and is the same on every machine.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from interp.errors import InterpError

QUERY_TYPES = ("refusal", "factual", "creative", "technical", "advice", "other")
TONES = ("neutral", "warm", "cold")
SPLIT_SALT = "interp-warmth-split-v1"
DEFAULT_HELD_OUT = 0.25
_RESOURCE = ("replies", "triples.jsonl")


class TriplesError(InterpError, ValueError):
    """The triples file is missing or malformed; the message names the line and field."""


@dataclass(frozen=True)
class ReplyTriple:
    """One request with a neutral reply and its warm and cold rewrites."""

    id: str
    query_type: str
    request: str
    neutral: str
    warm: str
    cold: str

    def reply(self, tone: str) -> str:
        """The reply of one tone: ``neutral``, ``warm`` or ``cold``."""
        if tone not in TONES:
            raise ValueError(f"tone must be one of {TONES}, found {tone!r}")
        return str(getattr(self, tone))


@dataclass(frozen=True)
class TripleSplit:
    """A train / held-out partition of triples (each part sorted by id)."""

    train: tuple[ReplyTriple, ...]
    held_out: tuple[ReplyTriple, ...]
    fraction: float
    salt: str

    @property
    def train_ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.train)

    @property
    def held_out_ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.held_out)


def triples_resource() -> Path:
    """Path of the packaged ``triples.jsonl`` (through :mod:`importlib.resources`)."""
    ref = resources.files("interp").joinpath("resources", *_RESOURCE)
    return Path(str(ref))


def parse_triples(lines: Iterable[str], source: str = "<lines>") -> list[ReplyTriple]:
    """Parse JSON lines into triples, checking fields, types and unique ids (blank lines skip)."""
    out: list[ReplyTriple] = []
    seen: set[str] = set()
    fields = ("id", "query_type", "request", *TONES)
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TriplesError(f"{source}:{n}: not JSON ({exc})") from None
        missing = [f for f in fields if not isinstance(row.get(f), str) or not row[f].strip()]
        if missing:
            raise TriplesError(f"{source}:{n}: missing or empty field(s) {missing}")
        if row["id"] in seen:
            raise TriplesError(f"{source}:{n}: duplicate id {row['id']!r}")
        seen.add(row["id"])
        out.append(ReplyTriple(**{f: row[f] for f in fields}))
    return out


def load_triples(path: str | Path | None = None) -> list[ReplyTriple]:
    """Load the triples (the packaged file by default), sorted by id."""
    p = Path(path) if path is not None else triples_resource()
    if not p.is_file():
        raise TriplesError(f"no triples file at {p}")
    with open(p, encoding="utf-8") as fh:
        triples = parse_triples(fh, source=str(p))
    if not triples:
        raise TriplesError(f"{p} holds no triples")
    return sorted(triples, key=lambda t: t.id)


def _rank_key(triple_id: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{triple_id}".encode()).hexdigest()


def split_triples(
    triples: Sequence[ReplyTriple],
    held_out_fraction: float = DEFAULT_HELD_OUT,
    *,
    salt: str = SPLIT_SALT,
) -> TripleSplit:
    """Deterministic stratified split: per query type, the ids with the lowest salted hash are
    held out (``round(fraction * n)`` of them, at least one when a type has two or more)."""
    if not 0.0 < held_out_fraction < 1.0:
        raise ValueError(f"held_out_fraction must be in (0, 1), found {held_out_fraction}")
    by_type: dict[str, list[ReplyTriple]] = defaultdict(list)
    for t in triples:
        by_type[t.query_type].append(t)
    train: list[ReplyTriple] = []
    held: list[ReplyTriple] = []
    for qtype in sorted(by_type):
        group = sorted(by_type[qtype], key=lambda t: _rank_key(t.id, salt))
        k = round(held_out_fraction * len(group))
        if len(group) >= 2:
            k = min(max(k, 1), len(group) - 1)
        held.extend(group[:k])
        train.extend(group[k:])
    return TripleSplit(
        train=tuple(sorted(train, key=lambda t: t.id)),
        held_out=tuple(sorted(held, key=lambda t: t.id)),
        fraction=held_out_fraction,
        salt=salt,
    )


def load_split(
    path: str | Path | None = None, held_out_fraction: float = DEFAULT_HELD_OUT
) -> TripleSplit:
    """:func:`load_triples` then :func:`split_triples` (the split every stage uses)."""
    return split_triples(load_triples(path), held_out_fraction)
