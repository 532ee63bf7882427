"""MedQA-USMLE JSON lines: ``{"question", "options": {"A": ..., ...}, "answer_idx": "C",
"answer": ...}`` (``answer``, if present, must equal the option ``answer_idx`` names).

The incorrect answer is ``wrong_answer`` where a row has one (the authors' converted rows), else
one other option chosen by a hash of the question (stable, not positional). The questions are
kept as written; the paper's rewrite "about a relative" is not done here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from interp.data.items import Item, make_item
from interp.data.loaders.base import LoadResult, collect, stable_id
from interp.data.records import Record, Where, get_str, iter_jsonl, require_str

FORMAT = "medqa"


def _options(rec: Record, where: Where) -> dict[str, str]:
    raw = rec.get("options")
    if isinstance(raw, list):  # [{"key": "A", "value": "..."}] as in some releases
        if not all(
            isinstance(o, dict)
            and isinstance(o.get("key"), str)
            and isinstance(o.get("value"), str)
            for o in raw
        ):
            raise where.error(
                "wrong type",
                field="options",
                expected='a list of {"key", "value"} strings',
                found=raw,
            )
        raw = {o["key"]: o["value"] for o in raw}
    if (
        not isinstance(raw, dict)
        or len(raw) < 2
        or not all(isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in raw.items())
    ):
        raise where.error(
            "wrong type",
            field="options",
            expected="an object of at least two letter -> text options",
            found=raw,
        )
    return {k.strip(): v.strip() for k, v in raw.items()}


def load_medqa(path: Path, skip_invalid: bool = False, task: str | None = None) -> LoadResult:
    """Items of a MedQA JSON-lines file (task ``medical`` unless ``task`` is given)."""
    kind = task or "medical"

    def parse(rec: Record, where: Where) -> Item:
        question = require_str(rec, "question", where)
        options = _options(rec, where)
        idx = require_str(rec, "answer_idx", where)
        if idx not in options:
            raise where.error(
                "answer_idx names no option",
                field="answer_idx",
                expected=f"one of {sorted(options)}",
                found=idx,
            )
        correct = options[idx]
        given = get_str(rec, "answer", where, required=False)
        if given is not None and given != correct:
            raise where.error(
                "answer disagrees with options[answer_idx]",
                field="answer",
                expected=repr(correct),
                found=given,
            )
        wrong = get_str(rec, "wrong_answer", where, required=False)
        if wrong is None:
            others = sorted(
                k for k in options if k != idx and options[k].casefold() != correct.casefold()
            )
            if not others:
                raise where.error(
                    "no option other than the answer",
                    field="options",
                    expected="a distinct wrong option",
                    found=options,
                )
            pick = int(hashlib.sha256(question.encode()).hexdigest(), 16) % len(others)
            wrong = options[others[pick]]
        return make_item(
            where,
            id=stable_id(kind, question),
            task=kind,
            question=question,
            correct=correct,
            incorrect=wrong,
            source="medqa",
            licence="MedQA (Jin et al. 2020), see its licence",
            extra={"options": options, "answer_idx": idx, "meta_info": rec.get("meta_info")},
        )

    return collect(Path(path), FORMAT, iter_jsonl(Path(path)), parse, skip_invalid)
