"""Reading raw records (JSON lines, JSON, CSV) and checking their fields with precise errors.

Every problem becomes a :class:`DataFormatError` naming the file, the line and the field. The
readers yield ``(line, record_or_error)`` so that a loader decides whether an error stops it or
is counted as a skip; they raise only for problems that make the whole file unreadable.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp.data.errors import DataFormatError, describe

Record = dict[str, Any]


@dataclass(frozen=True)
class Where:
    """The place of one record: file and 1-based line (the first line of a CSV row)."""

    file: str
    line: int | None = None

    def error(
        self, message: str, field: str | None = None, expected: str | None = None, found: Any = None
    ) -> DataFormatError:
        """A :class:`DataFormatError` at this place."""
        return DataFormatError(
            message,
            file=self.file,
            line=self.line,
            field=field,
            expected=expected,
            found=describe(found) if expected is not None else None,
        )


def _read_bytes(path: Path) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such data file")
    return path.read_bytes()


def _decode(raw: bytes, where: Where) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise where.error(f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def iter_jsonl(path: Path) -> Iterator[tuple[int, Record | DataFormatError]]:
    """Yield ``(line, object)`` for each non-blank line, or ``(line, error)`` where it is not a
    JSON object."""
    raw = _read_bytes(path)
    for i, line in enumerate(raw.split(b"\n"), start=1):
        where = Where(str(path), i)
        if not line.strip():
            continue
        try:
            obj = json.loads(_decode(line, where), parse_constant=_reject_constant)
        except DataFormatError as exc:
            yield i, exc
            continue
        except json.JSONDecodeError as exc:
            yield i, where.error(f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        except RecursionError:
            yield i, where.error("JSON nested too deeply")
            continue
        except ValueError as exc:
            yield i, where.error(str(exc))
            continue
        if not isinstance(obj, dict):
            yield i, where.error("each line must be a JSON object", expected="object", found=obj)
            continue
        if not _encodable(obj):
            yield i, where.error("contains an unpaired surrogate escape (not valid Unicode text)")
            continue
        yield i, obj


def _encodable(obj: Any) -> bool:
    """Whether every string in a parsed JSON value is valid Unicode (no lone surrogates)."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _reject_constant(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not allowed")


def iter_csv(
    path: Path, required_columns: Sequence[str]
) -> Iterator[tuple[int, Record | DataFormatError]]:
    """Yield ``(line, row)`` of a CSV file with a header.

    A missing file, bad encoding, a missing header or a missing required column raise at once (the
    whole file is unusable); a row with the wrong number of fields is yielded as an error.
    """
    where = Where(str(path))
    text = _decode(_read_bytes(path), where)
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise Where(str(path), 1).error(f"unreadable CSV header ({exc})") from None
    if not header or not any(h.strip() for h in header):
        raise Where(str(path), 1).error("the CSV file has no header row")
    header = [h.strip() for h in header]
    missing = [c for c in required_columns if c not in header]
    if missing:
        raise Where(str(path), 1).error(
            "missing CSV column(s)",
            field=missing[0],
            expected=f"columns {list(required_columns)}",
            found=header,
        )
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise Where(str(path), start).error(f"unreadable CSV ({exc})") from None
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield (
                start,
                Where(str(path), start).error(
                    "wrong number of CSV fields", expected=f"{len(header)} fields", found=row
                ),
            )
            continue
        yield start, dict(zip(header, row, strict=True))


def iter_json_array(path: Path) -> Iterator[tuple[int, Record | DataFormatError]]:
    """Yield ``(line, object)`` for each element of a file holding one JSON array of objects
    (``line``: where the element starts). A broken array raises at the line it breaks."""
    text = _decode(_read_bytes(path), Where(str(path)))
    decoder = json.JSONDecoder(parse_constant=_reject_constant)

    def line_at(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    def skip(pos: int) -> int:
        while pos < len(text) and text[pos] in " \t\r\n\ufeff":
            pos += 1
        return pos

    pos = skip(0)
    if text[pos : pos + 1] != "[":
        raise Where(str(path), line_at(pos)).error(
            "expected a JSON array of objects", expected="[", found=text[pos : pos + 20]
        )
    pos = skip(pos + 1)
    first = True
    while True:
        if first and text[pos : pos + 1] == "]":  # an empty array
            pos += 1
            break
        where = Where(str(path), line_at(pos))
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise Where(str(path), exc.lineno).error(
                f"not valid JSON ({exc.msg} at column {exc.colno})"
            ) from None
        except (ValueError, RecursionError) as exc:
            raise where.error(f"not valid JSON ({type(exc).__name__}: {exc})") from None
        first = False
        if not isinstance(obj, dict):
            yield (
                where.line or 0,
                where.error("array element is not an object", expected="object", found=obj),
            )
        elif not _encodable(obj):
            yield (
                where.line or 0,
                where.error("contains an unpaired surrogate escape (not valid Unicode text)"),
            )
        else:
            yield where.line or 0, obj
        pos = skip(pos)
        sep = text[pos : pos + 1]
        if sep == "]":
            pos += 1
            break
        if sep != ",":
            raise Where(str(path), line_at(pos)).error(
                "broken JSON array", expected="',' or ']'", found=text[pos : pos + 20]
            )
        pos = skip(pos + 1)
    if skip(pos) != len(text):
        raise Where(str(path), line_at(pos)).error("text after the JSON array")


def is_json_array_file(path: Path) -> bool:
    """Whether a file's first non-space character opens a JSON array."""
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
    return head.startswith(b"[")


# --------------------------------------------------------------------------- field checks


def get_str(
    rec: Mapping[str, Any], field: str, where: Where, *, required: bool = True
) -> str | None:
    """A non-empty string field (stripped); ``None`` for an absent optional field."""
    if field not in rec or rec[field] is None:
        if required:
            raise where.error(
                "required field is missing",
                field=field,
                expected="a non-empty string",
                found=rec.get(field),
            )
        return None
    value = rec[field]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise where.error("wrong type", field=field, expected="a string", found=value)
    if isinstance(value, float) and not math.isfinite(value):
        raise where.error("wrong value", field=field, expected="a string", found=value)
    text = str(value).strip()
    _check_encodable(text, field, where)
    if not text:
        if required:
            raise where.error(
                "empty value", field=field, expected="a non-empty string", found=value
            )
        return None
    return text


def require_str(rec: Mapping[str, Any], field: str, where: Where) -> str:
    """A required non-empty string field."""
    value = get_str(rec, field, where, required=True)
    assert value is not None
    return value


def get_str_list(
    rec: Mapping[str, Any], field: str, where: Where, *, required: bool = False
) -> tuple[str, ...]:
    """A list of strings (empty strings dropped); absent optional field -> ``()``."""
    if field not in rec or rec[field] is None:
        if required:
            raise where.error(
                "required field is missing", field=field, expected="a list of strings", found=None
            )
        return ()
    value = rec[field]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise where.error("wrong type", field=field, expected="a list of strings", found=value)
    for v in value:
        _check_encodable(v, field, where)
    return tuple(v.strip() for v in value if v.strip())


def _check_encodable(text: str, field: str, where: Where) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise where.error(
            "contains an unpaired surrogate (not encodable as UTF-8)", field=field
        ) from None


def split_list(text: str | None, sep: str = ";") -> tuple[str, ...]:
    """Split a separated text list (as in TruthfulQA's answer columns), dropping blanks."""
    if not text:
        return ()
    return tuple(p.strip() for p in text.split(sep) if p.strip())
