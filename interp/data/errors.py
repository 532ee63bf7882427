"""Errors and skip reports of the data stage.

Every malformed record either stops a loader with a :class:`DataFormatError` that names the file,
the line, the field, what was expected and what was found, or (with ``skip_invalid=True``) is
counted in a :class:`SkipReport` with the same details. Nothing is dropped silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp.errors import InterpError

_MAX_FOUND = 80


def describe(value: Any) -> str:
    """A short printable description of a found value (type and a truncated repr)."""
    try:
        text = repr(value)
    except RecursionError:
        text = "<too deeply nested>"
    if len(text) > _MAX_FOUND:
        text = text[: _MAX_FOUND - 3] + "..."
    return f"{type(value).__name__} {text}"


class DataFormatError(InterpError, ValueError):
    """A data file or record does not have the expected shape.

    The message reads ``<file>:<line>: field '<field>': expected <expected>, found <found>``;
    the parts are also kept as attributes for programs.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        expected: str | None = None,
        found: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        self.expected = expected
        self.found = found
        self.reason = message
        parts = []
        if self.file is not None:
            parts.append(f"{self.file}:" if line is None else f"{self.file}:{line}:")
        if field is not None:
            parts.append(f"field {field!r}:")
        parts.append(message)
        if expected is not None:
            parts.append(f"(expected {expected}, found {found})")
        super().__init__(" ".join(parts))


class TemplateError(InterpError, ValueError):
    """A prompt variant was asked for that the templates do not define."""


@dataclass(frozen=True)
class Skipped:
    """One record a loader skipped, and why (the message of the error it would have raised)."""

    line: int | None
    field: str | None
    reason: str


@dataclass
class SkipReport:
    """What a loader skipped with ``skip_invalid=True`` and what it merged.

    ``merged`` counts records folded into an earlier item with the same question (formats that
    hold one row per prompt variant, such as sycophancy-eval or the authors' eval_data).
    """

    file: str
    skipped: list[Skipped] = field(default_factory=list)
    merged: int = 0

    @property
    def count(self) -> int:
        """How many records were skipped."""
        return len(self.skipped)

    def add(self, error: DataFormatError) -> None:
        """Record a skipped record from the error that rejected it."""
        self.skipped.append(Skipped(error.line, error.field, str(error)))

    def by_reason(self) -> dict[str, int]:
        """Skipped records counted by field (``"<record>"`` for whole-record problems)."""
        return dict(Counter(s.field or "<record>" for s in self.skipped))

    def summary(self) -> str:
        """One line: how many were skipped and merged, and the commonest reasons."""
        parts = []
        if self.skipped:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.by_reason().items()))
            parts.append(f"skipped {self.count} invalid record(s) ({reasons})")
        if self.merged:
            parts.append(f"merged {self.merged} repeated row(s) into earlier items")
        return f"{self.file}: " + ("; ".join(parts) or "nothing skipped")
