"""sycophancy-eval style JSON lines (Sharma et al. 2023, the "answer" set).

Each line is ``{"prompt": [...], "base": {"dataset", "question", "answer", "correct_answer",
"incorrect_answer"}, "metadata": {...}}``; a flat object with the same keys (no ``base``) is
accepted too. ``answer`` (a string or a list) gives aliases of the correct answer. The file
repeats each question once per template; repeats are merged into one item and counted.
"""

from __future__ import annotations

from pathlib import Path

from interp.data.items import Item, make_item
from interp.data.loaders.base import LoadResult, collect, stable_id
from interp.data.records import Record, Where, get_str, iter_jsonl, require_str

FORMAT = "sycophancy_eval"
TASK_BY_DATASET = {"trivia_qa": "general_knowledge", "truthful_qa": "misconceptions"}


def _aliases(value: object, where: Where, correct: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise where.error(
            "wrong type", field="base.answer", expected="a string or a list of strings", found=value
        )
    return tuple(dict.fromkeys(v.strip() for v in value if v.strip() and v.strip() != correct))


def load_sycophancy_eval(
    path: Path, skip_invalid: bool = False, task: str | None = None
) -> LoadResult:
    """Items of a sycophancy-eval style file; ``task`` overrides the ``dataset`` mapping
    (trivia_qa -> general_knowledge, truthful_qa -> misconceptions)."""

    def parse(rec: Record, where: Where) -> Item:
        base = rec.get("base", rec)
        if not isinstance(base, dict):
            raise where.error("wrong type", field="base", expected="an object", found=base)
        dataset = get_str(base, "dataset", where, required=False)
        kind = task or TASK_BY_DATASET.get(dataset or "")
        if kind is None:
            raise where.error(
                "cannot tell the task (pass task=...)",
                field="base.dataset",
                expected=f"one of {sorted(TASK_BY_DATASET)}",
                found=dataset,
            )
        question = require_str(base, "question", where)
        correct = require_str(base, "correct_answer", where)
        return make_item(
            where,
            id=stable_id(kind, question),
            task=kind,
            question=question,
            correct=correct,
            aliases=_aliases(base.get("answer"), where, correct),
            incorrect=require_str(base, "incorrect_answer", where),
            source=f"sycophancy-eval:{dataset or Path(where.file).name}",
            licence="see the sycophancy-eval repository and the source dataset",
        )

    return collect(Path(path), FORMAT, iter_jsonl(Path(path)), parse, skip_invalid)
