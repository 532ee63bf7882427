"""Anthropic-style A/B sycophancy items (model-written evals; the CAA datasets of Rimsky et al.).

Each record has the question text with its lettered choices, the sycophantic answer
(``answer_matching_behavior``) and the truthful one (``answer_not_matching_behavior``), each a
string like ``" (A)"`` or a list of such strings. ``text`` / ``sycophantic`` / ``truthful`` are
accepted as names too. Files may be JSON lines or one JSON array. The truthful answer becomes the
item's correct answer, the sycophantic one the incorrect answer; the text of a lettered choice,
when the question lists it, becomes an alias.
"""

from __future__ import annotations

import re
from pathlib import Path

from interp.data.items import Item, make_item
from interp.data.loaders.base import LoadResult, collect, stable_id
from interp.data.records import Record, Where, is_json_array_file, iter_json_array, iter_jsonl

FORMAT = "anthropic_ab"
NAMES = {
    "question": ("question", "text", "prompt"),
    "incorrect": ("answer_matching_behavior", "sycophantic", "sycophantic_answer"),
    "correct": ("answer_not_matching_behavior", "truthful", "truthful_answer"),
}
_CHOICE = re.compile(r"^\s*\(([A-Z])\)\s*(.+?)\s*$", re.MULTILINE)


def _pick(rec: Record, role: str, where: Where) -> tuple[str, object]:
    for name in NAMES[role]:
        if name in rec and rec[name] is not None:
            return name, rec[name]
    raise where.error(
        "required field is missing",
        field=NAMES[role][0],
        expected=f"one of {list(NAMES[role])}",
        found=None,
    )


def _answers(rec: Record, role: str, where: Where) -> list[str]:
    name, value = _pick(rec, role, where)
    values = [value] if isinstance(value, str) else value
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(v, str) and v.strip() for v in values)
    ):
        raise where.error(
            "wrong type", field=name, expected="a non-empty string or list of strings", found=value
        )
    return [v.strip() for v in values]


def load_anthropic_ab(
    path: Path, skip_invalid: bool = False, task: str | None = None
) -> LoadResult:
    """Items of an A/B sycophancy file (task ``ab_sycophancy`` unless ``task`` is given)."""
    kind = task or "ab_sycophancy"

    def parse(rec: Record, where: Where) -> Item:
        name, text = _pick(rec, "question", where)
        if not isinstance(text, str) or not text.strip():
            raise where.error("wrong type", field=name, expected="a non-empty string", found=text)
        question = re.sub(r"\s*Answer:\s*$", "", text.strip())
        choices = dict(_CHOICE.findall(question))
        correct, incorrect = _answers(rec, "correct", where), _answers(rec, "incorrect", where)

        def forms(answers: list[str]) -> tuple[str, ...]:
            letters = [m.group(1) for a in answers if (m := re.fullmatch(r"\(?([A-Z])\)?", a))]
            return tuple(
                dict.fromkeys([*answers[1:], *(choices[k] for k in letters if k in choices)])
            )

        return make_item(
            where,
            id=stable_id(kind, question),
            task=kind,
            question=question,
            correct=correct[0],
            aliases=forms(correct),
            incorrect=incorrect[0],
            incorrect_aliases=forms(incorrect),
            source="anthropic-ab",
            licence="see the source dataset's licence",
        )

    records = (
        iter_json_array(Path(path)) if is_json_array_file(Path(path)) else iter_jsonl(Path(path))
    )
    return collect(Path(path), FORMAT, records, parse, skip_invalid)
