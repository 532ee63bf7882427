"""Property tests: random malformed records never escape a loader as anything but
DataFormatError, and with skip_invalid every record is either loaded, merged or reported."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interp.data.errors import DataFormatError
from interp.data.loaders import load_items

FIXTURES = Path(__file__).parent / "fixtures" / "data"
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

# (format, file name the loader sees, a valid fixture to mutate)
JSONL_FORMATS = [
    ("interp", "items.jsonl", "interp_items.jsonl"),
    ("eval_data", "trivia.json", "trivia.json"),
    ("eval_data", "disinfo.json", "disinfo.json"),
    ("eval_data", "medqa.json", "medqa_eval.json"),
    ("sycophancy_eval", "answer.jsonl", "sycophancy_eval.jsonl"),
    ("medqa", "medqa.jsonl", "medqa.jsonl"),
    ("anthropic_ab", "ab.jsonl", "anthropic_ab.jsonl"),
]


def _valid_records(fixture: str) -> list[dict]:
    return [
        json.loads(line) for line in (FIXTURES / fixture).read_text().splitlines() if line.strip()
    ]


TRICKY_LINES = [
    b'{"question": "\\ud800", "id": "x"}',
    b'{"id": "\\udfff", "task": "medical"}',
    b"NaN",
    b'{"a": 1e999}',
    b'{"a": NaN}',
    b"[" * 3000 + b"]" * 3000,
    b'"just a string"',
    b"\xff\xfe\x00",
    b'{"question": ' + b"9" * 5000 + b"}",
    b"{}",
]


@st.composite
def mutated_record(draw, fixture: str) -> bytes:
    """A valid record with keys dropped or values replaced by random JSON, or a random line."""
    kind = draw(st.sampled_from(["random", "mutate", "mutate", "text", "bytes", "tricky"]))
    if kind == "random":
        return json.dumps(draw(json_values)).encode()
    if kind == "text":
        return draw(st.text(max_size=40)).replace("\n", " ").encode()
    if kind == "bytes":
        return draw(st.binary(max_size=30)).replace(b"\n", b" ")
    if kind == "tricky":
        return draw(st.sampled_from(TRICKY_LINES))
    rec = dict(draw(st.sampled_from(_valid_records(fixture))))
    target = rec["base"] if "base" in rec and draw(st.booleans()) else rec
    for key in draw(st.lists(st.sampled_from(sorted(target)), max_size=3)):
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(
                json_values | st.sampled_from(["\ud800 lone surrogate", ["\udc00"], 1e308, -0.0])
            )
    return json.dumps(rec).encode()


def _check(path: Path, fmt: str, n_records: int) -> None:
    for skip in (False, True):
        try:
            result = load_items(path, fmt, skip_invalid=skip)
        except DataFormatError:
            continue
        if skip:  # nothing dropped silently
            assert len(result.items) + result.report.count + result.report.merged == n_records


def _fuzz_jsonl(fmt: str, name: str, fixture: str):
    @SETTINGS
    @given(data=st.data())
    def run(data):
        lines = data.draw(st.lists(mutated_record(fixture), min_size=1, max_size=6))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_bytes(b"\n".join(lines))
            n = sum(1 for line in path.read_bytes().split(b"\n") if line.strip())
            _check(path, fmt, n)

    return run


def test_fuzz_interp():
    _fuzz_jsonl(*JSONL_FORMATS[0])()


def test_fuzz_eval_data_trivia():
    _fuzz_jsonl(*JSONL_FORMATS[1])()


def test_fuzz_eval_data_disinfo():
    _fuzz_jsonl(*JSONL_FORMATS[2])()


def test_fuzz_eval_data_medqa():
    _fuzz_jsonl(*JSONL_FORMATS[3])()


def test_fuzz_sycophancy_eval():
    _fuzz_jsonl(*JSONL_FORMATS[4])()


def test_fuzz_medqa():
    _fuzz_jsonl(*JSONL_FORMATS[5])()


def test_fuzz_anthropic_ab():
    _fuzz_jsonl(*JSONL_FORMATS[6])()


@SETTINGS
@given(values=st.lists(json_values, max_size=5), raw=st.booleans())
def test_fuzz_anthropic_ab_json_array(values, raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ab.json"
        text = json.dumps(values)
        path.write_text(text[:-1] if raw and len(text) > 2 else text)
        for skip in (False, True):
            with contextlib.suppress(DataFormatError):
                load_items(path, "anthropic_ab", skip_invalid=skip)


CSV_FORMATS = [
    ("truthfulqa_csv", "truthfulqa.csv"),
    ("mask_csv", "mask.csv"),
]
cells = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30) | st.sampled_from(
    [
        "<pivotal>a/b</pivotal>",
        "x <pivotal>is/is not</pivotal> y.",
        "is",
        "x is y.",
        '"',
        "\\1",
        "\\g<0>",
        ";",
        "",
    ]
)


@st.composite
def csv_file(draw, fixture: str) -> str:
    header = next(csv.reader(io.StringIO((FIXTURES / fixture).read_text())))
    if draw(st.booleans()):
        header = draw(
            st.lists(st.sampled_from([*header, "junk"]), min_size=0, max_size=len(header) + 1)
        )
    rows = draw(st.lists(st.lists(cells, min_size=0, max_size=len(header) + 2), max_size=5))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    text = out.getvalue()
    if draw(st.booleans()):  # break the CSV structure
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(['"', "\x00", "\r", '"\n"', ",,,"])) + text[cut:]
    return text


def _fuzz_csv(fmt: str, fixture: str):
    @SETTINGS
    @given(text=csv_file(fixture))
    def run(text):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / fixture
            path.write_text(text)
            for skip in (False, True):
                try:
                    result = load_items(path, fmt, skip_invalid=skip)
                except DataFormatError:
                    continue
                assert result.items

    return run


def test_fuzz_truthfulqa_csv():
    _fuzz_csv(*CSV_FORMATS[0])()


def test_fuzz_mask_csv():
    _fuzz_csv(*CSV_FORMATS[1])()


@SETTINGS
@given(data=st.binary(max_size=200))
def test_fuzz_random_bytes_every_format(data):
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in (
            "interp",
            "eval_data",
            "sycophancy_eval",
            "truthfulqa_csv",
            "medqa",
            "mask_csv",
            "anthropic_ab",
        ):
            path = Path(tmp) / "trivia.json"
            path.write_bytes(data)
            for skip in (False, True):
                with contextlib.suppress(DataFormatError):
                    load_items(path, fmt, skip_invalid=skip)
