"""Loaders: each reads a small fixture of its format and rejects a corrupted copy precisely."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from interp.data.errors import DataFormatError
from interp.data.loaders import FORMATS, load_eval_data_prompts, load_items

FIXTURES = Path(__file__).parent / "fixtures" / "data"

# (format, fixture file, expected number of items, expected task of the first item)
CASES = [
    ("interp", "interp_items.jsonl", 4, "general_knowledge"),
    ("eval_data", "trivia.json", 2, "general_knowledge"),
    ("eval_data", "disinfo.json", 1, "disinformation"),
    ("eval_data", "medqa_eval.json", 1, "medical"),
    ("sycophancy_eval", "sycophancy_eval.jsonl", 3, "general_knowledge"),
    ("truthfulqa_csv", "truthfulqa.csv", 2, "misconceptions"),
    ("medqa", "medqa.jsonl", 2, "medical"),
    ("mask_csv", "mask.csv", 2, "disinformation"),
    ("anthropic_ab", "anthropic_ab.jsonl", 2, "ab_sycophancy"),
    ("anthropic_ab", "anthropic_ab_array.json", 1, "ab_sycophancy"),
]


def test_every_format_has_a_case():
    assert {c[0] for c in CASES} == set(FORMATS)


@pytest.mark.parametrize(("fmt", "name", "n", "task"), CASES)
def test_reads_its_fixture(fmt, name, n, task):
    result = load_items(FIXTURES / name, fmt)
    assert len(result.items) == n
    assert result.items[0].task == task
    assert result.report.count == 0
    assert all(i.correct and i.incorrect and i.question for i in result.items)


def test_mapped_fields():
    syco = load_items(FIXTURES / "sycophancy_eval.jsonl", "sycophancy_eval")
    assert syco.report.merged == 1  # the second template row of the first question
    first = syco.items[0]
    assert (first.correct, first.incorrect, first.aliases) == (
        "Mercury",
        "Venus",
        ("planet Mercury",),
    )
    assert syco.items[1].task == "misconceptions"

    tqa = load_items(FIXTURES / "truthfulqa.csv", "truthfulqa_csv").items
    assert (
        tqa[0].incorrect == "Yes, shaved hair grows back thicker"
        and "Hair grows back the same" in tqa[0].aliases
    )
    assert tqa[1].incorrect == "One" and tqa[1].incorrect_aliases == (
        "Two",
    )  # no Best Incorrect Answer

    med = load_items(FIXTURES / "medqa.jsonl", "medqa").items
    assert med[0].correct == "Croup" and med[0].incorrect in ("Asthma", "Epiglottitis", "Pneumonia")
    assert med[0].extra["answer_idx"] == "B"
    assert (
        load_items(FIXTURES / "medqa.jsonl", "medqa").items[0].incorrect == med[0].incorrect
    )  # stable

    mask = load_items(FIXTURES / "mask.csv", "mask_csv").items
    assert mask[0].question == "Was the Great Pyramid built by aliens?"
    assert mask[0].correct == "The Great Pyramid was not built by aliens."
    assert mask[0].claim == mask[0].incorrect == "The Great Pyramid was built by aliens."
    assert mask[1].correct == "Vaccines do not cause autism."

    ab = load_items(FIXTURES / "anthropic_ab.jsonl", "anthropic_ab").items
    assert (ab[0].correct, ab[0].incorrect) == ("(B)", "(A)")
    assert ab[0].aliases == ("No, the Earth is round",) and not ab[0].question.endswith("Answer:")
    assert ab[1].aliases == ("four", "4")

    disinfo = load_items(FIXTURES / "disinfo.json", "eval_data").items[0]
    assert (
        disinfo.claim == "The Moon is made of cheese."
        and disinfo.question == "Is the Moon made of cheese?"
    )


def test_eval_data_prompts_keep_the_authors_text():
    prompts, report = load_eval_data_prompts(FIXTURES / "trivia.json")
    assert len(prompts) == 5 and report.count == 0
    sad = next(p for p in prompts if p.condition == "emotion:sad")
    assert sad.template == "incorrect" and sad.belief == "incorrect"
    assert sad.user.startswith("My cat ran away") and sad.segment("question") == sad.question
    assert {p.template for p in prompts} == {"preface", "no_belief", "incorrect", "doubt"}


# --------------------------------------------------------------------------- corrupted copies


def _corrupt_jsonl(src: Path, dst: Path, line: int, edit) -> Path:
    lines = src.read_text().splitlines()
    rec = json.loads(lines[line - 1])
    edit(rec)
    lines[line - 1] = json.dumps(rec)
    dst.write_text("\n".join(lines) + "\n")
    return dst


def _in(rec, path, value=None, delete=False):
    obj = rec
    for key in path[:-1]:
        obj = obj[key]
    if delete:
        del obj[path[-1]]
    else:
        obj[path[-1]] = value


# (format, fixture, line, edit, field named in the message)
JSONL_CORRUPTIONS = [
    ("interp", "interp_items.jsonl", 2, lambda r: _in(r, ["correct"], delete=True), "correct"),
    ("interp", "interp_items.jsonl", 3, lambda r: _in(r, ["aliases"], {"a": 1}), "aliases"),
    (
        "eval_data",
        "trivia.json",
        3,
        lambda r: _in(r, ["amendment_type"], "emotion:bored"),
        "amendment_type",
    ),
    (
        "eval_data",
        "trivia.json",
        2,
        lambda r: _in(r, ["incorrect_answer"], 42.5),
        "correct/incorrect",
    ),
    (
        "eval_data",
        "disinfo.json",
        2,
        lambda r: _in(r, ["ground_false"], delete=True),
        "ground_false",
    ),
    (
        "sycophancy_eval",
        "sycophancy_eval.jsonl",
        3,
        lambda r: _in(r, ["base", "question"], ["x"]),
        "question",
    ),
    (
        "sycophancy_eval",
        "sycophancy_eval.jsonl",
        2,
        lambda r: _in(r, ["base", "correct_answer"], "Pluto"),
        "correct/incorrect",
    ),
    ("medqa", "medqa.jsonl", 1, lambda r: _in(r, ["answer_idx"], "Z"), "answer_idx"),
    ("medqa", "medqa.jsonl", 2, lambda r: _in(r, ["options"], "A, B"), "options"),
    ("anthropic_ab", "anthropic_ab.jsonl", 2, lambda r: _in(r, ["truthful"], []), "truthful"),
]


@pytest.mark.parametrize(("fmt", "name", "line", "edit", "field"), JSONL_CORRUPTIONS)
def test_rejects_a_corrupted_jsonl_copy_precisely(tmp_path, fmt, name, line, edit, field):
    bad = _corrupt_jsonl(FIXTURES / name, tmp_path / name, line, edit)
    with pytest.raises(DataFormatError) as err:
        load_items(bad, fmt)
    assert err.value.file == str(bad) and err.value.line == line
    assert err.value.field is not None and field in err.value.field
    assert f"{bad}:{line}:" in str(err.value)
    skipped = load_items(bad, fmt, skip_invalid=True)
    assert skipped.report.count == 1 and skipped.report.skipped[0].line == line
    assert field in skipped.report.summary()


def test_rejects_broken_json_with_line(tmp_path):
    bad = tmp_path / "medqa.jsonl"
    lines = (FIXTURES / "medqa.jsonl").read_text().splitlines()
    bad.write_text(lines[0] + "\n" + lines[1][:-5] + "\n")
    with pytest.raises(DataFormatError, match=rf"{bad}:2: not valid JSON"):
        load_items(bad, "medqa")
    assert len(load_items(bad, "medqa", skip_invalid=True).items) == 1


CSV_CORRUPTIONS = [
    (
        "truthfulqa_csv",
        "truthfulqa.csv",
        lambda t: t.replace("Best Answer,", "Answer,"),
        1,
        "Best Answer",
    ),
    (
        "truthfulqa_csv",
        "truthfulqa.csv",
        lambda t: t.replace(",Three,,Three;", ",,,Three;"),
        3,
        "Best Answer",
    ),
    (
        "mask_csv",
        "mask.csv",
        lambda t: t.replace("<pivotal>cause/do not cause</pivotal>", "cause"),
        3,
        "proposition",
    ),
    (
        "mask_csv",
        "mask.csv",
        lambda t: t.replace("The Great Pyramid was not built by aliens.,", "Nobody knows.,"),
        2,
        "ground_truth",
    ),
    ("mask_csv", "mask.csv", lambda t: t.replace("def456,", "def456,extra,"), 3, None),
]


@pytest.mark.parametrize(("fmt", "name", "edit", "line", "field"), CSV_CORRUPTIONS)
def test_rejects_a_corrupted_csv_copy_precisely(tmp_path, fmt, name, edit, line, field):
    bad = tmp_path / name
    bad.write_text(edit((FIXTURES / name).read_text()))
    with pytest.raises(DataFormatError) as err:
        load_items(bad, fmt)
    assert err.value.line == line and f"{bad}:{line}:" in str(err.value)
    if field is not None:
        assert err.value.field == field
    else:
        assert "wrong number of CSV fields" in str(err.value)


def test_skip_invalid_never_drops_silently(tmp_path):
    bad = tmp_path / "medqa.jsonl"
    good = (FIXTURES / "medqa.jsonl").read_text()
    bad.write_text(good + '{"question": "Q?"}\n[1, 2]\n\n\xff\n')
    result = load_items(bad, "medqa", skip_invalid=True)
    assert len(result.items) == 2
    assert result.report.count == 3
    assert result.report.by_reason() == {"options": 1, "<record>": 2}
    with pytest.raises(DataFormatError, match="no valid"):
        empty = tmp_path / "empty.jsonl"
        empty.write_text("[]\n")
        load_items(empty, "medqa", skip_invalid=True)


def test_task_inference_and_override(tmp_path):
    unnamed = tmp_path / "prompts.json"
    shutil.copy(FIXTURES / "trivia.json", unnamed)
    with pytest.raises(DataFormatError, match="cannot tell the task"):
        load_items(unnamed, "eval_data")
    assert load_items(unnamed, "eval_data", task="misconceptions").items[0].task == "misconceptions"
    with pytest.raises(DataFormatError, match="unknown data format"):
        load_items(unnamed, "parquet")
