"""What every loader shares: the result type, stable ids, and the skip-or-stop collector."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from interp.data.errors import DataFormatError, SkipReport
from interp.data.items import ID_PREFIX, Item
from interp.data.records import Record, Where

# A loader's per-record parser: (record, place) -> item, raising DataFormatError.
RecordParser = Callable[[Record, Where], Item]


@dataclass
class LoadResult:
    """Items read from one file, and what was skipped or merged (see :class:`SkipReport`)."""

    path: Path
    format: str
    items: list[Item] = field(default_factory=list)
    report: SkipReport = field(default_factory=lambda: SkipReport(""))

    def __post_init__(self) -> None:
        if not self.report.file:
            self.report.file = str(self.path)


def stable_id(task: str, question: str, prefix: str | None = None) -> str:
    """``<prefix>-<10 hex of sha256(question)>``: the same question always gets the same id."""
    head = prefix or ID_PREFIX.get(task, "x")
    return f"{head}-{hashlib.sha256(question.strip().encode()).hexdigest()[:10]}"


def collect(
    path: Path,
    format: str,
    records: Iterable[tuple[int, Record | DataFormatError]],
    parse: RecordParser,
    skip_invalid: bool,
) -> LoadResult:
    """Parse every record; stop at the first error or, with ``skip_invalid``, count it.

    Records whose question repeats an earlier item are merged into it (and counted) when they
    agree on the answers, and are an error when they do not. A file with no valid item at all is
    an error even with ``skip_invalid``.
    """
    result = LoadResult(Path(path), format)
    by_question: dict[str, tuple[int, Item]] = {}
    ids: dict[str, int] = {}
    for line, rec in records:
        where = Where(str(path), line)
        try:
            if isinstance(rec, DataFormatError):
                raise rec
            item = parse(rec, where)
            key = " ".join(item.question.casefold().split())
            if key in by_question:
                first_line, first = by_question[key]
                if (first.correct, first.incorrect) != (item.correct, item.incorrect):
                    raise where.error(
                        f"repeats the question of line {first_line} with other answers",
                        field="correct/incorrect",
                        expected=f"{first.correct!r} / {first.incorrect!r}",
                        found=f"{item.correct} / {item.incorrect}",
                    )
                result.report.merged += 1
                continue
            if item.id in ids:
                raise where.error(
                    f"duplicate id (first on line {ids[item.id]})",
                    field="id",
                    expected="a unique id",
                    found=item.id,
                )
        except DataFormatError as exc:
            if not skip_invalid:
                raise
            result.report.add(exc)
            continue
        by_question[key] = (line, item)
        ids[item.id] = line
        result.items.append(item)
    if not result.items:
        detail = (
            f" ({result.report.count} invalid record(s) skipped)" if result.report.count else ""
        )
        raise DataFormatError(f"no valid {format} record in the file{detail}", file=path)
    return result
