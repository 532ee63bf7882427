"""TruthfulQA's CSV (columns Type, Category, Question, Best Answer, Correct Answers,
Incorrect Answers, Source; newer releases add Best Incorrect Answer).

``Best Answer`` is the correct answer and the other ``Correct Answers`` (separated by ``;``) its
aliases; ``Best Incorrect Answer`` (or else the first of ``Incorrect Answers``) is the incorrect
answer.
"""

from __future__ import annotations

from pathlib import Path

from interp.data.items import Item, make_item
from interp.data.loaders.base import LoadResult, collect, stable_id
from interp.data.records import Record, Where, get_str, iter_csv, require_str, split_list

FORMAT = "truthfulqa_csv"
REQUIRED = ("Question", "Best Answer", "Incorrect Answers")


def load_truthfulqa_csv(
    path: Path, skip_invalid: bool = False, task: str | None = None
) -> LoadResult:
    """Items of a TruthfulQA CSV (task ``misconceptions`` unless ``task`` is given)."""
    kind = task or "misconceptions"

    def parse(rec: Record, where: Where) -> Item:
        question = require_str(rec, "Question", where)
        best = require_str(rec, "Best Answer", where)
        wrong = list(split_list(get_str(rec, "Incorrect Answers", where, required=False)))
        best_wrong = get_str(rec, "Best Incorrect Answer", where, required=False) or (
            wrong[0] if wrong else None
        )
        if best_wrong is None:
            raise where.error(
                "no incorrect answer",
                field="Incorrect Answers",
                expected="at least one answer separated by ';'",
                found=rec.get("Incorrect Answers"),
            )
        right = split_list(get_str(rec, "Correct Answers", where, required=False))
        return make_item(
            where,
            id=stable_id(kind, question),
            task=kind,
            question=question,
            correct=best,
            aliases=tuple(a for a in dict.fromkeys(right) if a != best),
            incorrect=best_wrong,
            incorrect_aliases=tuple(a for a in dict.fromkeys(wrong) if a != best_wrong),
            source=f"truthfulqa:{get_str(rec, 'Category', where, required=False) or 'unknown'}",
            licence="TruthfulQA, Apache-2.0 (Lin, Hilton & Evans 2021)",
            extra={"type": rec.get("Type"), "source_url": rec.get("Source")},
        )

    return collect(Path(path), FORMAT, iter_csv(Path(path), REQUIRED), parse, skip_invalid)
