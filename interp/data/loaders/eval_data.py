"""The authors' ``eval_data/*.json`` files (JSON lines, one row per built prompt).

Rows of trivia / truthfulqa files: ``content_key`` (the question), ``correct_answer``,
``incorrect_answer``, ``prompt_template`` (original, original_neutral, incorrect, correct),
``prompt`` (the full user message), ``amendment_type`` (the condition). Disinformation rows use
``prompt_disinfo``, ``ground_truth`` and ``ground_false`` instead; MedQA rows ``original_question``,
``answer``, ``options``, ``answer_idx``, ``wrong_answer`` and ``prompt_type``. Each file holds 28
rows per question: :func:`load_eval_data` merges them into one item per question (counting the
merged rows), :func:`load_eval_data_prompts` keeps every row as a :class:`Prompt` so the exact
published grid can be rerun.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interp.data.contexts import CONDITIONS
from interp.data.errors import DataFormatError, SkipReport
from interp.data.items import Item, make_item
from interp.data.loaders.base import LoadResult, collect, stable_id
from interp.data.prompt_sets import Prompt
from interp.data.records import Record, Where, get_str, iter_jsonl, require_str
from interp.data.templates import PAPER_TEMPLATE_NAMES

FORMAT = "eval_data"
TASK_BY_FILE = {
    "trivia": "general_knowledge",
    "truthfulqa": "misconceptions",
    "disinfo": "disinformation",
    "medqa": "medical",
}
TEMPLATE_BY_PAPER_NAME = {v: k for k, v in PAPER_TEMPLATE_NAMES.items()}


def _task_for(path: Path, task: str | None) -> str | None:
    if task is not None:
        return task
    stem = Path(path).stem.lower()
    return next((t for key, t in TASK_BY_FILE.items() if key in stem), None)


def _item(rec: Record, where: Where, task: str | None) -> Item:
    if "prompt_disinfo" in rec:
        question = require_str(rec, "prompt_disinfo", where)
        truth, false = (
            require_str(rec, "ground_truth", where),
            require_str(rec, "ground_false", where),
        )
        return make_item(
            where,
            id=stable_id("disinformation", question),
            task="disinformation",
            question=question,
            correct=truth,
            incorrect=false,
            claim=false,
            source=f"eval_data:{Path(where.file).name}",
            licence="see the authors' repository (lujainibrahim/warm_ai_2025)",
            extra={k: rec[k] for k in ("proposition",) if isinstance(rec.get(k), str)},
        )
    if "original_question" in rec or "answer_idx" in rec:
        question = get_str(rec, "content_key", where, required=False) or require_str(
            rec, "original_question", where
        )
        options = rec.get("options")
        if options is not None and not isinstance(options, dict | list):
            raise where.error(
                "wrong type",
                field="options",
                expected="an object or list of options",
                found=options,
            )
        return make_item(
            where,
            id=stable_id("medical", question),
            task="medical",
            question=question,
            correct=require_str(rec, "answer", where),
            incorrect=require_str(rec, "wrong_answer", where),
            source=f"eval_data:{Path(where.file).name}",
            licence="see the authors' repository and MedQA's licence",
            extra={
                "options": options,
                "answer_idx": rec.get("answer_idx"),
                "original_question": rec.get("original_question"),
            },
        )
    if task is None:
        raise where.error(
            "cannot tell the task of this row (name the file trivia/truthfulqa/disinfo/medqa or "
            "pass task=...)",
            field="content_key",
        )
    question = require_str(rec, "content_key", where)
    return make_item(
        where,
        id=stable_id(task, question),
        task=task,
        question=question,
        correct=require_str(rec, "correct_answer", where),
        incorrect=require_str(rec, "incorrect_answer", where),
        source=f"eval_data:{Path(where.file).name}",
        licence="see the authors' repository (lujainibrahim/warm_ai_2025) and the source dataset",
    )


def _variant(rec: Record, where: Where) -> tuple[str, str, str]:
    """(condition, template, prompt text) of a row, checked."""
    template_field = (
        "prompt_type"
        if "prompt_template" not in rec and "prompt_type" in rec
        else "prompt_template"
    )
    paper_name = require_str(rec, template_field, where)
    if paper_name not in TEMPLATE_BY_PAPER_NAME:
        raise where.error(
            "unknown template",
            field=template_field,
            expected=f"one of {sorted(TEMPLATE_BY_PAPER_NAME)}",
            found=paper_name,
        )
    condition = require_str(rec, "amendment_type", where)
    if condition not in CONDITIONS:
        raise where.error(
            "unknown condition",
            field="amendment_type",
            expected=f"one of {list(CONDITIONS)}",
            found=condition,
        )
    return condition, TEMPLATE_BY_PAPER_NAME[paper_name], require_str(rec, "prompt", where)


def load_eval_data(path: Path, skip_invalid: bool = False, task: str | None = None) -> LoadResult:
    """One item per question of an eval_data file (the 28 rows of a question are merged).

    ``task`` is inferred from the file name (trivia, truthfulqa, disinfo, medqa) unless given.
    Every row is checked in full (template, condition and prompt too).
    """
    inferred = _task_for(path, task)

    def parse(rec: Record, where: Where) -> Item:
        _variant(rec, where)
        return _item(rec, where, inferred)

    return collect(Path(path), FORMAT, iter_jsonl(Path(path)), parse, skip_invalid)


def load_eval_data_prompts(
    path: Path, skip_invalid: bool = False, task: str | None = None
) -> tuple[list[Prompt], SkipReport]:
    """Every row of an eval_data file as a :class:`Prompt` with the authors' exact text.

    The question's span is located in the prompt where it appears verbatim; statements are not
    separated out (``statement_id`` is None) and no matched-pair keys are set.
    """
    inferred = _task_for(path, task)
    report = SkipReport(str(path))
    prompts: list[Prompt] = []
    seen: dict[str, int] = {}
    for line, rec in iter_jsonl(Path(path)):
        where = Where(str(path), line)
        try:
            if isinstance(rec, DataFormatError):
                raise rec
            condition, template, text = _variant(rec, where)
            item = _item(rec, where, inferred)
            pid = f"{item.id}/{condition}/{template}"
            if pid in seen:
                raise where.error(
                    f"repeats the prompt of line {seen[pid]}",
                    field="prompt_template",
                    expected="one row per question x condition x template",
                    found=pid,
                )
        except DataFormatError as exc:
            if not skip_invalid:
                raise
            report.add(exc)
            continue
        seen[pid] = line
        at = text.find(item.question)
        spans: dict[str, tuple[int, int]] = (
            {"question": (at, at + len(item.question))} if at >= 0 else {}
        )
        extra: dict[str, Any] = {"source_line": line}
        prompts.append(
            Prompt(
                prompt_id=pid,
                item_id=item.id,
                task=item.task,
                condition=condition,
                template=template,
                belief=template if template in ("incorrect", "doubt") else "none",
                statement_id=None,
                user=text,
                spans=spans,
                question=item.question,
                correct=item.correct,
                incorrect=item.incorrect,
                claim=item.claim,
                extra=extra,
            )
        )
    if not prompts:
        raise DataFormatError("no valid eval_data row in the file", file=path)
    return prompts, report
