"""The item schema and the embedded item set.

An :class:`Item` is one question with an objective answer: the correct answer and its accepted
aliases, one plausible incorrect answer (the "wrong belief" of the sycophancy templates), where it
came from and under which licence. The embedded set (``interp/resources/items/*.jsonl``, written
for this project) holds at least 150 items for each of the paper's four task kinds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

from interp.data.errors import DataFormatError, SkipReport
from interp.data.records import Where, get_str, get_str_list, iter_jsonl, require_str

Task = Literal["general_knowledge", "misconceptions", "disinformation", "medical", "ab_sycophancy"]
ALL_TASKS: tuple[str, ...] = get_args(Task)
# The paper's four task kinds (TriviaQA, TruthfulQA, MASK disinformation, MedQA about a relative).
PAPER_TASKS: tuple[str, ...] = ("general_knowledge", "misconceptions", "disinformation", "medical")
ID_PREFIX = {
    "general_knowledge": "gk",
    "misconceptions": "mc",
    "disinformation": "di",
    "medical": "md",
    "ab_sycophancy": "ab",
}
ITEM_FIELDS = (
    "id",
    "task",
    "question",
    "correct",
    "aliases",
    "incorrect",
    "incorrect_aliases",
    "claim",
    "source",
    "licence",
)
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


@dataclass(frozen=True)
class Item:
    """One evaluation question with an objective answer.

    ``incorrect`` is one plausible wrong answer of the same type; it fills the belief template
    "I think the answer is {incorrect}." and ``correct`` fills the doubt template. ``claim`` (for
    disinformation items) states the false claim that answering ``incorrect`` would endorse.
    ``extra`` keeps format-specific fields of loaded items (e.g. MedQA options); it is not part of
    equality.
    """

    id: str
    task: str
    question: str
    correct: str
    incorrect: str
    aliases: tuple[str, ...] = ()
    incorrect_aliases: tuple[str, ...] = ()
    claim: str | None = None
    source: str = "interp-authored"
    licence: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.id or not _ID_RE.match(self.id):
            raise ValueError(f"id must be letters, digits and _.:- , found {self.id!r}")
        if self.task not in ALL_TASKS:
            raise ValueError(f"task must be one of {list(ALL_TASKS)}, found {self.task!r}")
        for name in ("question", "correct", "incorrect"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name} must be a non-empty string")
        if self.correct.strip().casefold() == self.incorrect.strip().casefold():
            raise ValueError(f"correct and incorrect answers are the same ({self.correct!r})")

    @property
    def correct_forms(self) -> tuple[str, ...]:
        """The correct answer and its aliases."""
        return (self.correct, *self.aliases)

    @property
    def incorrect_forms(self) -> tuple[str, ...]:
        """The incorrect answer and its aliases."""
        return (self.incorrect, *self.incorrect_aliases)

    def to_record(self) -> dict[str, Any]:
        """The item as a JSON-ready dict in schema order (``claim`` only when set)."""
        rec: dict[str, Any] = {
            "id": self.id,
            "task": self.task,
            "question": self.question,
            "correct": self.correct,
            "aliases": list(self.aliases),
            "incorrect": self.incorrect,
            "incorrect_aliases": list(self.incorrect_aliases),
        }
        if self.claim is not None:
            rec["claim"] = self.claim
        rec["source"] = self.source
        rec["licence"] = self.licence
        return rec


def make_item(where: Where, **fields: Any) -> Item:
    """Build an :class:`Item`, turning a validation failure into a :class:`DataFormatError`."""
    try:
        return Item(**fields)
    except ValueError as exc:
        text = str(exc)
        first = text.split(" ", 1)[0]
        field_name = first if first in ITEM_FIELDS else None
        raise where.error(f"invalid item: {text}", field=field_name) from None


def item_from_record(rec: Mapping[str, Any], where: Where, *, strict_keys: bool = True) -> Item:
    """Parse one record of the interp item schema (see ``interp/resources/items/README.md``)."""
    if strict_keys:
        unknown = sorted(set(rec) - set(ITEM_FIELDS))
        if unknown:
            raise where.error(
                "unknown field",
                field=unknown[0],
                expected=f"only {list(ITEM_FIELDS)}",
                found=unknown[0],
            )
    task = require_str(rec, "task", where)
    if task not in ALL_TASKS:
        raise where.error(
            "unknown task", field="task", expected=f"one of {list(ALL_TASKS)}", found=task
        )
    return make_item(
        where,
        id=require_str(rec, "id", where),
        task=task,
        question=require_str(rec, "question", where),
        correct=require_str(rec, "correct", where),
        aliases=get_str_list(rec, "aliases", where),
        incorrect=require_str(rec, "incorrect", where),
        incorrect_aliases=get_str_list(rec, "incorrect_aliases", where),
        claim=get_str(rec, "claim", where, required=False),
        source=get_str(rec, "source", where, required=False) or "",
        licence=get_str(rec, "licence", where, required=False) or "",
    )


def read_items_jsonl(path: Path, skip_invalid: bool = False) -> tuple[list[Item], SkipReport]:
    """Read a JSON-lines file in the interp item schema; ids must be unique."""
    report = SkipReport(str(path))
    items: list[Item] = []
    seen: dict[str, int] = {}
    for line, rec in iter_jsonl(Path(path)):
        try:
            if isinstance(rec, DataFormatError):
                raise rec
            where = Where(str(path), line)
            item = item_from_record(rec, where)
            if item.id in seen:
                raise where.error(
                    f"duplicate id (first on line {seen[item.id]})",
                    field="id",
                    expected="a unique id",
                    found=item.id,
                )
        except DataFormatError as exc:
            if not skip_invalid:
                raise
            report.add(exc)
            continue
        seen[item.id] = line
        items.append(item)
    return items, report


def embedded_items_dir() -> Path:
    """The folder of the embedded item files inside the installed package."""
    return Path(str(resources.files("interp") / "resources" / "items"))


def load_embedded_items(tasks: Iterable[str] | None = None) -> list[Item]:
    """The embedded items of ``tasks`` (default: the paper's four), in file order.

    Raises :class:`DataFormatError` if a file is malformed, an item sits in the wrong file or ids
    repeat across files: the embedded set is never loaded partially.
    """
    wanted = tuple(tasks) if tasks is not None else PAPER_TASKS
    unknown = [t for t in wanted if t not in PAPER_TASKS]
    if unknown:
        raise DataFormatError(
            f"no embedded items for task(s) {unknown}; embedded tasks are {list(PAPER_TASKS)}"
        )
    out: list[Item] = []
    seen: dict[str, str] = {}
    for task in wanted:
        path = embedded_items_dir() / f"{task}.jsonl"
        items, _ = read_items_jsonl(path)
        for item in items:
            if item.task != task:
                raise DataFormatError(
                    f"item {item.id} has task {item.task!r} but sits in {path.name}",
                    file=path,
                    field="task",
                )
            if item.id in seen:
                raise DataFormatError(
                    f"item id {item.id} repeats (also in {seen[item.id]})", file=path, field="id"
                )
            seen[item.id] = path.name
        out.extend(items)
    return out


def select_items(
    items: Sequence[Item], tasks: Iterable[str] | None = None, per_task: int | None = None
) -> list[Item]:
    """Items of the given tasks, at most ``per_task`` of each (the first ones, in order)."""
    keep = set(tasks) if tasks is not None else None
    counts: dict[str, int] = {}
    out = []
    for item in items:
        if keep is not None and item.task not in keep:
            continue
        if per_task is not None and counts.get(item.task, 0) >= per_task:
            continue
        counts[item.task] = counts.get(item.task, 0) + 1
        out.append(item)
    return out
