"""Interpersonal contexts: the paper's eight conditions plus unmodified, and their statements.

Each condition holds first-person statements written for this project
(``interp/resources/contexts.json``). One statement is prepended to a question; which one is a
seeded hash of (seed, item id, condition), so the assignment is the same for every model, does not
depend on which other items are selected, and is shared by all templates of an item (so matched
pairs differ only by what they are meant to differ by).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from interp.data.errors import DataFormatError

Group = Literal["none", "emotion", "relation", "stake"]
UNMODIFIED = "unmodified"
# In the paper's order: unmodified, three emotions, three relations, two stakes.
CONDITIONS: tuple[str, ...] = (
    UNMODIFIED,
    "emotion:sad",
    "emotion:happy",
    "emotion:anger",
    "relation:close",
    "relation:hierarchical_up",
    "relation:hierarchical_down",
    "stake:high",
    "stake:low",
)
MIN_STATEMENTS = 5
CONTEXTS_FORMAT = "interp.contexts/1"


@dataclass(frozen=True)
class Statement:
    """One first-person statement of a condition."""

    id: str
    condition: str
    text: str


@dataclass(frozen=True)
class Condition:
    """One interpersonal condition: its name (``group:detail``), group and statements."""

    name: str
    group: Group
    description: str
    statements: tuple[Statement, ...]

    @property
    def drops_preface(self) -> bool:
        """Stake statements replace the friends preface in the belief templates (as in the
        paper)."""
        return self.group == "stake"


def group_of(condition: str) -> Group:
    """The group of a condition name (``"emotion:sad"`` -> ``"emotion"``)."""
    if condition == UNMODIFIED:
        return "none"
    head = condition.split(":", 1)[0]
    if head not in ("emotion", "relation", "stake"):
        raise ValueError(f"unknown condition {condition!r}; conditions are {list(CONDITIONS)}")
    return head  # type: ignore[return-value]


def default_contexts_path() -> Path:
    """The embedded contexts file."""
    return Path(str(resources.files("interp") / "resources" / "contexts.json"))


def load_contexts(path: Path | None = None) -> dict[str, Condition]:
    """Read and check a contexts file (default: the embedded one), keyed by condition name.

    The file must define exactly the nine conditions, at least five statements for each of the
    eight non-unmodified ones, none for unmodified, and unique non-empty statement ids and texts.
    """
    path = Path(path) if path is not None else default_contexts_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"cannot read contexts file ({exc})", file=path) from None
    return parse_contexts(raw, str(path))


def parse_contexts(raw: Any, file: str = "<contexts>") -> dict[str, Condition]:
    """Check a parsed contexts document (see :func:`load_contexts`)."""

    def fail(msg: str, field: str | None = None) -> DataFormatError:
        return DataFormatError(msg, file=file, field=field)

    if not isinstance(raw, dict) or raw.get("format") != CONTEXTS_FORMAT:
        raise fail(f"not a contexts file (expected format {CONTEXTS_FORMAT!r})", "format")
    conditions = raw.get("conditions")
    if not isinstance(conditions, dict) or set(conditions) != set(CONDITIONS):
        found = sorted(conditions) if isinstance(conditions, dict) else conditions
        raise fail(f"conditions must be exactly {list(CONDITIONS)}, found {found}", "conditions")
    out: dict[str, Condition] = {}
    seen_ids: set[str] = set()
    seen_texts: set[str] = set()
    for name in CONDITIONS:
        spec = conditions[name]
        where = f"conditions.{name}"
        if not isinstance(spec, dict) or not isinstance(spec.get("statements"), list):
            raise fail("expected an object with a 'statements' list", where)
        group = group_of(name)
        if spec.get("group", group) != group:
            raise fail(f"group must be {group!r}", f"{where}.group")
        statements = []
        for i, st in enumerate(spec["statements"]):
            sid, text = (st.get("id"), st.get("text")) if isinstance(st, dict) else (None, None)
            if not isinstance(sid, str) or not sid or not isinstance(text, str) or not text.strip():
                raise fail(
                    "each statement needs a non-empty 'id' and 'text'", f"{where}.statements[{i}]"
                )
            if text != text.strip() or text[-1] not in ".!?":
                raise fail(
                    "a statement must be trimmed and end with . ! or ?", f"{where}.statements[{i}]"
                )
            if sid in seen_ids or text in seen_texts:
                raise fail(f"statement {sid!r} repeats an id or a text", f"{where}.statements[{i}]")
            seen_ids.add(sid)
            seen_texts.add(text)
            statements.append(Statement(sid, name, text))
        if name == UNMODIFIED and statements:
            raise fail("unmodified takes no statements", where)
        if name != UNMODIFIED and len(statements) < MIN_STATEMENTS:
            raise fail(
                f"needs at least {MIN_STATEMENTS} statements, found {len(statements)}", where
            )
        out[name] = Condition(name, group, str(spec.get("description", "")), tuple(statements))
    return out


def assign_statement(item_id: str, condition: Condition, seed: int = 0) -> Statement | None:
    """The statement of ``condition`` for ``item_id`` (None for unmodified).

    A seeded hash, not a random stream: the same for every model and every run, independent of the
    other items, and the same for all templates of the item.
    """
    if not condition.statements:
        return None
    digest = hashlib.sha256(f"{seed}\x1f{item_id}\x1f{condition.name}".encode()).digest()
    return condition.statements[int.from_bytes(digest[:8], "big") % len(condition.statements)]


def contexts_fingerprint(contexts: dict[str, Condition]) -> str:
    """sha256 of the statements in use (for a prompt set's manifest)."""
    payload = [[c.name, [[s.id, s.text] for s in c.statements]] for c in contexts.values()]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
