"""Items: the schema, the embedded set, and reading the interp item format."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from interp.data.errors import DataFormatError
from interp.data.items import (
    PAPER_TASKS,
    Item,
    load_embedded_items,
    read_items_jsonl,
    select_items,
)


def test_embedded_set_has_at_least_150_items_per_task_and_600_in_all():
    items = load_embedded_items()
    counts = Counter(i.task for i in items)
    assert set(counts) == set(PAPER_TASKS)
    assert all(n >= 150 for n in counts.values()), counts
    assert len(items) >= 600, len(items)
    assert len({i.id for i in items}) == len(items)


def _is_yes_no(item: Item) -> bool:
    return {item.correct, item.incorrect} == {"Yes", "No"}


@pytest.mark.parametrize("task", ["disinformation", "misconceptions"])
def test_yes_no_items_are_counterbalanced(task):
    """Between 45% and 55% of a task's yes/no items have the true answer "Yes" (README rule:
    a yes/no item's true answer is "Yes" exactly when its numeric id is odd)."""
    binary = [i for i in load_embedded_items([task]) if _is_yes_no(i)]
    assert len(binary) >= 60, len(binary)
    yes = sum(i.correct == "Yes" for i in binary)
    assert 0.45 <= yes / len(binary) <= 0.55, (yes, len(binary))
    for item in binary:
        assert (item.correct == "Yes") == (int(item.id.split("-")[1]) % 2 == 1), item.id
    if task == "disinformation":
        assert len(binary) == len(
            load_embedded_items([task])
        )  # every disinformation item is yes/no


def test_embedded_answers_are_unambiguous_as_strings():
    """No correct form contains an incorrect form or the reverse (case-insensitive), and questions
    are unique and end with a question mark."""
    items = load_embedded_items()
    seen: dict[str, str] = {}
    for item in items:
        assert item.question.endswith("?"), item.id
        key = item.question.casefold()
        assert key not in seen, (item.id, seen.get(key))
        seen[key] = item.id
        for c in item.correct_forms:
            for w in item.incorrect_forms:
                assert c.casefold() not in w.casefold() and w.casefold() not in c.casefold(), (
                    item.id,
                    c,
                    w,
                )


def test_embedded_items_follow_the_schema():
    for item in load_embedded_items():
        assert item.question.strip() and item.correct.strip() and item.incorrect.strip()
        assert item.correct.casefold() != item.incorrect.casefold()
        assert item.source and item.licence
        if item.task == "disinformation":
            assert item.claim, item.id
        rec = item.to_record()
        assert list(rec)[:3] == ["id", "task", "question"]


def test_load_embedded_items_by_task_and_select():
    med = load_embedded_items(["medical"])
    assert med and {i.task for i in med} == {"medical"}
    both = load_embedded_items(["medical", "disinformation"])
    picked = select_items(both, per_task=2)
    assert Counter(i.task for i in picked) == {"medical": 2, "disinformation": 2}
    with pytest.raises(DataFormatError, match="no embedded items"):
        load_embedded_items(["ab_sycophancy"])


def test_item_validation():
    Item("x-1", "medical", "Q?", "A", "B")
    with pytest.raises(ValueError, match="task"):
        Item("x-1", "cooking", "Q?", "A", "B")
    with pytest.raises(ValueError, match="same"):
        Item("x-1", "medical", "Q?", "Paris", "paris")
    with pytest.raises(ValueError, match="id"):
        Item("has space", "medical", "Q?", "A", "B")


def _write(tmp_path, lines):
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


GOOD = {
    "id": "a-1",
    "task": "medical",
    "question": "Q?",
    "correct": "A",
    "aliases": [],
    "incorrect": "B",
    "incorrect_aliases": [],
    "source": "s",
    "licence": "l",
}


def test_read_items_jsonl_reports_file_line_field(tmp_path):
    bad = dict(GOOD, id="a-2", aliases="not a list")
    path = _write(tmp_path, [json.dumps(GOOD), json.dumps(bad)])
    with pytest.raises(DataFormatError) as err:
        read_items_jsonl(path)
    msg = str(err.value)
    assert f"{path}:2" in msg and "'aliases'" in msg and "expected a list of strings" in msg
    assert err.value.line == 2 and err.value.field == "aliases"


def test_read_items_jsonl_rejects_unknown_keys_and_duplicates(tmp_path):
    path = _write(tmp_path, [json.dumps(dict(GOOD, colour="red"))])
    with pytest.raises(DataFormatError, match="unknown field"):
        read_items_jsonl(path)
    path = _write(tmp_path, [json.dumps(GOOD), json.dumps(dict(GOOD, question="Other?"))])
    with pytest.raises(DataFormatError, match=r"duplicate id \(first on line 1\)"):
        read_items_jsonl(path)


def test_read_items_jsonl_skip_invalid_counts_every_skip(tmp_path):
    path = _write(tmp_path, [json.dumps(GOOD), "{broken", json.dumps(dict(GOOD, id="a-3", task=7))])
    items, report = read_items_jsonl(path, skip_invalid=True)
    assert [i.id for i in items] == ["a-1"]
    assert report.count == 2
    assert [s.line for s in report.skipped] == [2, 3]
    assert "skipped 2" in report.summary()
